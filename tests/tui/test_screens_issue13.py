"""What a user sees at 80x24 and 200x50 (issue 13 items 2-6, 13), on pinned data
shaped like the presets: a long config, embed and neurons the same weights,
names that differ only at their end, a memorizing run, a long alert summary.

Each test asserts the property as text and the screens are also kept as
snapshots (tests/tui/snapshots/user_*; GROKWATCH_UPDATE_SNAPSHOTS=1 rewrites).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tuidata as D
from tuidata import screen_text

from grokwatch.tui.app import GrokwatchApp
from grokwatch.wire import messages

SNAP_DIR = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("GROKWATCH_UPDATE_SNAPSHOTS") == "1"
SIZES = [(80, 24), (200, 50)]
NAMES = ("grokking-x+y-p97", "grokking-x+y-p97-neurons", "memorize-x+y-p97")


def user_snapshot(names: tuple[str, ...] = NAMES) -> dict:
    runs = []
    n = 200
    x = np.arange(n, dtype=np.float64)
    steps = list(range(0, n * 10, 10))
    for name in names:
        s = D.summary(name, step=1990, phase="memorization" if "memo" in name else "grokking",
                      state="finished" if "neurons" in name else "live",
                      onset=None if "memo" in name else 700,
                      val_acc=0.006 if "memo" in name else 0.99)
        s["config"] = {"task": "x+y", "frac": 0.3, "lr": 0.001, "weight_decay": 1.0,
                       "steps": 3000, "d_embed": 128, "hidden": 256, "seed": 0}
        if "memo" in name:
            val = 0.004 + 0.004 * np.sin(x / 9) ** 2
            conc = np.full(n, 0.217)
        else:
            val = 1 / (1 + np.exp(-(x - 120) / 6))
            conc = 0.1 + 0.5 / (1 + np.exp(-(x - 80) / 10))
        geo = {"erank": 30 - 0.1 * x, "fourier_conc": conc,
               "fourier_conc_null": np.full(n, 0.2182 if "memo" in name else 0.1)}
        mk = {"train_loss": np.exp(-x / 20) + 0.001, "val_loss": 5 - 4.5 * val,
              "train_acc": np.ones(n), "val_acc": val}
        mk.update({f"{t}.{k}": v for t in ("embed", "neurons") for k, v in geo.items()})
        series = {k: {"steps": steps, "values": [float(v) for v in vals]}
                  for k, vals in mk.items()}
        spectra, pts = D.arrays()
        spectra = {f"{t}.{k.split('.', 1)[1]}": v for t in ("embed", "neurons")
                   for k, v in spectra.items()}
        pts = {f"{t}.constellation": pts["neurons.constellation"] for t in ("embed", "neurons")}
        runs.append(messages.run_data(s, series=series, spectra=spectra, points=pts))
    alerts = [D.alert(names[0], "memorized", 190, D.T0 + 10),
              D.alert(names[0], "onset", 700, D.T0 + 20),
              D.alert(names[0], "generalized", 1220, D.T0 + 30),
              D.alert(names[-1], "memorized", 180, D.T0 + 40)]
    alerts[1]["summary"] = ("grokking onset at step 700: structure rose past its null "
                            "while val acc was 0.02")
    return messages.snapshot_reply(seq=5, epoch=None, runs=runs, alerts=alerts, hooks=[])


async def screen(keys: list[str], size: tuple[int, int], ascii: bool = False) -> list[str]:
    app = GrokwatchApp(feed=False, ascii=ascii)
    async with app.run_test(size=size) as pilot:
        app.apply_messages([("snapshot", user_snapshot())])
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        return [ln.rstrip() for ln in screen_text(app)]


def check_snapshot(name: str, lines: list[str]) -> None:
    path = SNAP_DIR / f"user_{name}.txt"
    got = "\n".join(lines) + "\n"
    if UPDATE or not path.exists():
        path.write_text(got)
        if not UPDATE:
            pytest.fail(f"new snapshot {path.name} written: review it and run again")
    assert got.splitlines() == path.read_text().splitlines(), f"screen differs from {path}"


SIZE_IDS = [f"{w}x{h}" for w, h in SIZES]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_detail_config_footer_aliases_and_honest_axes(utc, size):
    lines = await screen(["enter"], size)
    text = "\n".join(lines)
    check_snapshot(f"detail_{size[0]}x{size[1]}", lines)
    # item 4: the config is wrapped, never cut; the footer keeps its last keys
    cfg = " ".join(ln.strip() for ln in lines if ln.startswith(("config", "       ")))
    assert "weight_decay=1.0" in cfg and "seed=0" in cfg
    assert lines[-1].endswith("q quit")
    # item 3: one row (and one spectrum) naming both aliased tensors
    assert "embed=neurons.erank" in text and "embed=neurons.fourier_conc" in text
    assert "neurons.erank " not in text.replace("embed=neurons.erank", "")
    # item 2: accuracies on 0..1: a constant 1 is drawn at the top
    train = next(ln for ln in lines if ln.startswith("train_acc"))
    assert set(train.split()[1]) == {"█"} and train.split()[3] == "0..1"


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_memorizing_run_is_drawn_flat_at_the_bottom(utc, size):
    lines = await screen(["end", "enter"], size)
    check_snapshot(f"memo_{size[0]}x{size[1]}", lines)
    val = next(ln for ln in lines if ln.startswith("val_acc"))
    assert set(val.split()[1]) == {"▁"}, val  # 0.004..0.008 of 0..1
    i = next(i for i, ln in enumerate(lines) if ln.startswith("embed=neurons.fourier_conc"))
    metric, null = lines[i].split(), lines[i + 1].split()
    assert len(set(metric[1])) == 1 and len(set(null[1])) == 1  # 0.217 vs 0.2182: flat
    assert abs("▁▂▃▄▅▆▇█".index(metric[1][0]) - "▁▂▃▄▅▆▇█".index(null[1][0])) <= 1
    assert metric[3] == null[3]  # one shared axis, shown on both rows


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_alerts_view_wraps_text_and_keeps_columns_apart(utc, size):
    lines = await screen(["a"], size)
    check_snapshot(f"alerts_{size[0]}x{size[1]}", lines)
    text = " ".join(ln.strip() for ln in lines)
    assert "generalizedfiring" not in text and "generalized firing" in text
    assert "grokking onset at step 700: structure rose" in text  # item 4: no number cut
    assert "while val acc was 0.02" in text


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
async def test_runs_table_names_stay_distinct_and_columns_apart(utc, size):
    lines = await screen([], size)
    check_snapshot(f"runs_{size[0]}x{size[1]}", lines)
    rows = [ln for ln in lines if "finished" in ln or " live" in ln][:3]
    shown = [ln[2:].split()[0] for ln in rows]
    assert len(set(shown)) == 3, shown  # item 13: no two names cut to the same text
    assert any(s.endswith("neurons") for s in shown)
    assert "finished▏" not in "\n".join(lines)  # item 4: a space before the border


async def test_row_does_not_vanish_after_coming_back_from_the_alerts_view(utc):
    """Item 5: cursor on the 3rd run, alerts view, an update, then `1`: all rows show."""
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.apply_messages([("snapshot", user_snapshot())])
        await pilot.pause()
        await pilot.press("down", "down", "a")
        app.apply_messages([("run", D.update(D.summary("zzz-new"), seq=6))])
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        lines = screen_text(app)
        assert "4 runs" in lines[0]
        body = [ln for ln in lines[2:] if ln.strip()]
        assert [ln[2:].split()[0] for ln in body[:4]] == [
            "grokking-x+y-p97", "grokkin~-neurons", "memorize-x+y-p97", "zzz-new"]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("keys", [[], ["enter"], ["enter", "pagedown", "pagedown"],
                                  ["space", "down", "space", "c"], ["a"], ["question_mark"],
                                  ["p"]],
                         ids=["runs", "detail", "detail-scrolled", "compare", "alerts", "help",
                              "phases"])
async def test_ascii_mode_draws_only_ascii(utc, size, keys):
    """Item 6: no `▔` (or any other non-ASCII glyph) with --ascii."""
    lines = await screen(keys, size, ascii=True)
    bad = sorted({c for ln in lines for c in ln if ord(c) > 126})
    assert not bad, bad
