"""Deterministic plain-data daemon messages for TUI tests (built by grokwatch.wire.messages)."""

from __future__ import annotations

import numpy as np

from grokwatch import wire
from grokwatch.wire import messages

T0 = 1_780_000_000.0  # pinned clock for everything time-like


def summary(run: str, *, step: int = 1000, phase: str = "memorization", state: str = "live",
            onset: int | None = None, train_acc: float = 1.0, val_acc: float = 0.05,
            rate: float = 12.0, host: str = "box1") -> dict:
    return {"run": run, "sid": 1, "host": host, "pid": 4242, "config": {"lr": 0.001, "wd": 1.0},
            "modulus": 97, "start": T0, "state": state, "step": step, "last_t": T0 + step,
            "phase": phase, "onset_step": onset,
            "last": {"train_acc": train_acc, "val_acc": val_acc, "train_loss": 0.01,
                     "val_loss": 4.5},
            "rate": rate, "counters": {"frames": 10, "records": 100, "rejected": 0,
                                       "dropped": 0, "gaps": 0, "duplicates": 0, "errors": 0}}


def update(summ: dict, *, seq: int = 1, series: dict | None = None,
           spectra: dict | None = None, points: dict | None = None) -> dict:
    """A ``run`` update body as the daemon publishes it."""
    return {"seq": seq, **messages.run_update(messages.run_data(
        summ, series=series, spectra=spectra, points=points))}


def series(n: int = 200, *, grok_at: int | None = 120) -> dict:
    """Metric tails; ``grok_at=None`` is a run that memorizes and never generalizes."""
    steps = list(range(0, n * 10, 10))
    x = np.arange(n, dtype=np.float64)
    if grok_at is None:
        val_acc = 0.02 + 0.02 * np.sin(x / 7) ** 2
        conc = 0.1 + 0.01 * np.sin(x / 5)
    else:
        val_acc = 1 / (1 + np.exp(-(x - grok_at) / 6))
        conc = 0.1 + 0.5 / (1 + np.exp(-(x - grok_at + 40) / 10))
    mk = {
        "train_loss": np.exp(-x / 20) + 0.001,
        "val_loss": 5 - 4.5 * val_acc,
        "train_acc": np.minimum(1.0, x / 20),
        "val_acc": val_acc,
        "weight_norm": 40 - 0.05 * x,
        "neurons.erank": 30 - 0.1 * x,
        "neurons.fourier_conc": conc,
        "neurons.fourier_conc_null": np.full(n, 0.1),
    }
    return {k: {"steps": steps, "values": [float(v) for v in vals]} for k, vals in mk.items()}


def fourier(p: int = 97, keys: tuple[int, ...] = (14, 35, 41)) -> np.ndarray:
    k = p // 2
    power = np.full(k, 0.02, dtype=np.float32)
    power[np.arange(k) % 7 == 0] = 0.05
    for i, kk in enumerate(keys):
        power[kk - 1] = 1.0 - 0.2 * i
    return power


def constellation(p: int = 97, k: int = 14) -> np.ndarray:
    a = np.arange(p)
    ang = 2 * np.pi * k * a / p
    return np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)


def arrays(step: int = 1990) -> tuple[dict, dict]:
    spectra = {"neurons.fourier": {"step": step, "arr": wire.pack_array(fourier())},
               "neurons.sv": {"step": step,
                              "arr": wire.pack_array(np.linspace(9, 0.5, 24).astype(np.float32))}}
    pts = {"neurons.constellation": {"step": step, "arr": wire.pack_array(constellation())}}
    return spectra, pts


def alert(run: str, kind: str, step: int, t: float, status: str = "firing") -> dict:
    return {"run": run, "step": step, "time": "x", "t": t, "kind": kind, "status": status,
            "fingerprint": f"{run}-{kind}", "summary": f"{kind} at step {step}",
            "evidence": {}, "labels": {}}


def hook(run: str, t: float, result: str = "ok") -> dict:
    return {"time": "x", "t": t, "rule": "notify", "alert_kind": "onset", "run": run,
            "fingerprint": f"{run}-onset", "status": "firing", "result": result,
            "rc": 0 if result == "ok" else 1, "attempts": 1, "duration": 0.01, "detail": ""}


def snapshot(n_runs: int = 3) -> dict:
    """A full snapshot reply: grokking, memorizing and diverged runs with history."""
    phases = [("grok-wd1", "grokking", 1200, 0.97), ("memo-wd0", "memorization", None, 0.04),
              ("nan-lr1", "diverged", None, 0.0)]
    runs = []
    for i in range(n_runs):
        name, phase, onset, val = phases[i % 3]
        if i >= 3:
            name = f"{name}-{i}"
        spectra, pts = arrays()
        s = summary(name, step=1990 - i, phase=phase, onset=onset, val_acc=val,
                    rate=10.0 + i, state="lost" if phase == "diverged" else "live")
        runs.append(messages.run_data(s, series=series(grok_at=120 if phase == "grokking" else None),
                                      spectra=spectra, points=pts))
    alerts = [alert("memo-wd0", "memorized", 200, T0 + 10),
              alert("grok-wd1", "memorized", 210, T0 + 20),
              alert("grok-wd1", "onset", 1200, T0 + 30),
              alert("nan-lr1", "diverged", 400, T0 + 40)][: 4 if n_runs >= 3 else 1]
    return messages.snapshot_reply(seq=5, epoch=None, runs=runs, alerts=alerts,
                                   hooks=[hook("grok-wd1", T0 + 31)])


def screen_text(app) -> list[str]:
    """The app's current screen as plain text lines."""
    return [s.text for s in app.screen._compositor.render_strips()]
