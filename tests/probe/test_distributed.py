"""Distributed training: two real processes on gloo, a DDP-wrapped model, a real daemon.

Every rank builds the same Probe; by default only rank 0's reaches the daemon,
with ``ranks="each"`` every rank is its own run grouped under the given name,
and nothing the probe does can hold up the collectives (each step all-reduces).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch", reason="the distributed probe test needs torch")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

from grokwatch.probe.distributed import rank_world, unwrap  # noqa: E402

STEPS = 12

WORKER = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(1)
    endpoint = sys.argv[1]
    from grokwatch.probe import Probe
    # built before init_process_group: the launcher's RANK/WORLD_SIZE decide
    each = Probe("ddp-each", endpoint=endpoint, ranks="each")
    dist.init_process_group("gloo")
    probe = Probe("ddp", endpoint=endpoint, every=4, modulus=7)  # the default: rank 0
    torch.manual_seed(0)
    model = DDP(torch.nn.Sequential(torch.nn.Embedding(7, 8), torch.nn.Flatten(),
                                    torch.nn.Linear(16, 7)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(dist.get_rank())
    for step in range({steps}):
        x = torch.randint(0, 7, (16, 2), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), (x[:, 0] + x[:, 1]) % 7)
        opt.zero_grad()
        loss.backward()  # DDP all-reduces the gradients here
        opt.step()
        each.log(step, train_loss=loss)
        total = loss.detach().clone()
        dist.all_reduce(total)  # one more collective per step, after the probe's calls
        probe.log(step, train_loss=total / dist.get_world_size())
        probe.observe(step, model)  # the DDP wrapper: unwrapped, embedding discovered
    oks = [p.close(timeout=10) for p in (probe, each)]
    dist.barrier()
    dist.destroy_process_group()
    print(" ".join("silent" if p.silent else f"{{p.run}}:{{ok}}" for p, ok in
                   zip((probe, each), oks)))
""").format(steps=STEPS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(daemon, world: int = 2) -> list[str]:
    port = free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "RANK": str(rank), "WORLD_SIZE": str(world), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, daemon.ingest], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=90)  # a deadlocked collective fails here
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a rank hung: the probe blocked a collective") from None
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    return outs


def runs(daemon) -> dict[str, dict]:
    return {r["run"]: r for r in daemon.request("runs")["runs"]}


def steps_of(daemon, run: str, metric: str) -> list[int]:
    return sorted(r["step"] for r in
                  daemon.request("export", run=run, metric=metric, timeout=10)["rows"])


@pytest.mark.slow
def test_two_gloo_ranks_rank_zero_by_default_or_each_rank_grouped(daemon):
    outs = launch(daemon)
    # rank 0: the default probe and its own per-rank run; rank 1: silent, and its per-rank run
    assert outs == ["ddp:True ddp-each.rank0:True", "silent ddp-each.rank1:True"]
    got = runs(daemon)
    assert set(got) == {"ddp", "ddp-each.rank0", "ddp-each.rank1"}
    assert steps_of(daemon, "ddp", "train_loss") == list(range(STEPS)), "one rank, once"
    # observe ran at its cadence (steps 0, 4, 8) on the unwrapped model
    assert steps_of(daemon, "ddp", "weight_norm") == [0, 4, 8]
    assert steps_of(daemon, "ddp", "embed.fourier_ipr") == [0, 4, 8]
    assert got["ddp"]["config"]["rank"] == 0 and got["ddp"]["config"]["world_size"] == 2
    for r in (0, 1):
        run = f"ddp-each.rank{r}"
        assert got[run]["config"]["group"] == "ddp-each"
        assert got[run]["config"]["rank"] == r
        assert steps_of(daemon, run, "train_loss") == list(range(STEPS))


def test_unwrap_and_rank_outside_distributed(monkeypatch):
    m = torch.nn.Linear(3, 3)
    assert unwrap(torch.nn.DataParallel(m)) is m
    assert unwrap(m) is m
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_world() == (0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert rank_world() == (3, 4)
