"""The README's preset table agrees with the presets (issue 13 item 9: it had drifted)."""

from __future__ import annotations

import re
from pathlib import Path

from grokwatch.examples.presets import PRESETS

README = Path(__file__).parents[2] / "README.md"


def rows() -> dict[str, list[str]]:
    text = README.read_text().split("## Example presets", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in text.splitlines():
        m = re.match(r"\| `(\w+)` \|(.*)\|$", line)
        if m:
            out[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return out


def num(s: str) -> float:
    return float(s.replace(",", ""))


def test_readme_preset_table_matches_the_presets():
    table = rows()
    assert set(table) == set(PRESETS)
    for name, cfg in PRESETS.items():
        data, steps = table[name][0], table[name][1]
        assert f"{round(cfg['frac'] * 100)} %" in data, (name, data)
        assert re.search(rf"wd {cfg['weight_decay']:g}\b", data), (name, data)
        if cfg["lr"] != 1e-3:
            lr = re.search(r"lr ([\d.e-]+)", data)
            assert lr and float(lr.group(1)) == cfg["lr"], (name, data)
        budget = re.search(r"\(([\d,]+)", steps)
        assert budget and num(budget.group(1)) == cfg["steps"], (name, steps)
        if cfg.get("until_val"):
            assert f"stops {cfg['extra_steps']} after val {cfg['until_val']:g}" in steps
        else:  # no early stop: it runs its budget
            assert num(steps.split()[0]) == cfg["steps"], (name, steps)
