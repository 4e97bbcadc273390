"""The phase diagram model (grokwatch.client.diagram): placement, letters, text."""

from __future__ import annotations

from grokwatch.client import diagram


def run(name, phase, *, start=0.0, onset=None, status=None, **config):
    cfg = {"sweep": "s", "sweep_axes": list(config), **config}
    if status:
        cfg["sweep_status"] = status
    return {"run": name, "phase": phase, "onset_step": onset, "step": 100, "state": "finished",
            "start": start, "config": cfg, "last": {"val_acc": 0.5}}


def test_grid_letters_and_text():
    runs = [run("a", "memorization", wd=0.0, frac=0.3), run("b", "grokking", onset=420, wd=1.0,
                                                          frac=0.3),
            run("c", "comprehension", wd=0.0, frac=0.6), run("d", "starting", wd=1.0, frac=0.6,
                                                             status="failed")]
    d = diagram.build(runs)
    assert (d.x, d.y, d.xs, d.ys) == ("wd", "frac", [0.0, 1.0], [0.3, 0.6])
    assert {k: c.letter for k, c in d.cells.items()} == {
        (0.0, 0.3): "M", (1.0, 0.3): "G", (0.0, 0.6): "C", (1.0, 0.6): "F"}
    lines = diagram.text(d).splitlines()
    assert lines[1].split() == ["0.6", "|", "C", "F"]
    assert lines[2].split() == ["0.3", "|", "M", "G420"]
    assert lines[-1].split() == ["0", "1", "wd"]
    rows = diagram.rows(diagram.build(runs, "frac", "wd"))
    assert rows[0] == {**rows[0], "frac": 0.3, "wd": 0.0, "letter": "M", "run": "a"}


def test_newest_run_wins_a_cell_and_one_axis_is_a_row():
    runs = [run("old", "memorization", start=1.0, wd=0.0), run("new", "grokking", start=2.0,
                                                              wd=0.0),
            run("x", "confusion", start=1.5, wd=9.0)]
    d = diagram.build(runs)
    assert d.y == diagram.ONE_ROW and d.xs == [0.0, 9.0]
    cell = d.cells[(0.0, "")]
    assert (cell.run, cell.others) == ("new", 1)
    assert diagram.text(d, onset=False).splitlines()[0].split()[-2:] == ["G", "X"]
    # keys that do not vary are no axes; nothing varies: no diagram
    assert diagram.candidate_axes(runs) == ["wd"]
    assert diagram.build([run("a", "grokking", wd=1.0)]) is None
