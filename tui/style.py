"""Colours and glyphs: one place for the 256-colour palette and the ASCII fallback."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

from rich.style import Style

from grokwatch.client.state import HOOK
from grokwatch.wire import names
from grokwatch.wire.messages import FINISHED, LIVE, LOST

PHASE_COLORS = {
    names.STARTING: "grey62",
    names.COMPREHENSION: "green3",
    names.MEMORIZATION: "gold3",
    names.GROKKING: "magenta",
    names.CONFUSION: "orange3",
    names.DIVERGED: "red1",
}
assert set(PHASE_COLORS) == set(names.PHASES)
KIND_COLORS = {
    names.MEMORIZED: "gold3",
    names.ONSET: "magenta",
    names.GENERALIZED: "green3",
    names.DIVERGED: "red1",
    names.STALLED: "orange3",
    names.LOST: "red3",
    names.DROPPED: "deep_sky_blue1",
    HOOK: "cyan",
}
STATE_COLORS = {LIVE: "green3", LOST: "red3", FINISHED: "grey62"}
# Runs overlaid in the compare view, in order (distinct in 256 colours).
SERIES_COLORS = ("cyan", "gold3", "magenta", "green3", "orange3", "deep_sky_blue1",
                 "red1", "plum2")

DIM = Style(color="grey50")
LABEL = Style(color="grey85")
KEY = Style(color="magenta", bold=True)
NULL = Style(color="grey50")
BAR = Style(color="deep_sky_blue1")
WARN = Style(color="red1", bold=True)


@dataclass(frozen=True)
class Glyphs:
    """The characters one mode draws with."""

    spark: str  # 8 levels, lowest first
    bar_full: str
    bar_eighths: str  # partial tops, 1/8 .. 7/8
    null: str
    key: str
    nonfinite: str
    point: str
    crowd: str
    hline: str
    marked: str
    cursor: str
    braille: bool


UNICODE = Glyphs(spark="▁▂▃▄▅▆▇█", bar_full="█", bar_eighths="▁▂▃▄▅▆▇", null="╌",
                 key="▲", nonfinite="×", point="●", crowd="◆", hline="─", marked="◆",
                 cursor="▶", braille=True)
ASCII = Glyphs(spark="_.,-:=+#", bar_full="#", bar_eighths="       ", null="-", key="^",
               nonfinite="x", point="o", crowd="@", hline="-", marked="*", cursor=">",
               braille=False)


def glyphs(ascii: bool) -> Glyphs:
    """The glyph set for plain-ASCII mode or not."""
    return ASCII if ascii else UNICODE


def phase_style(phase: str) -> Style:
    return Style(color=PHASE_COLORS.get(phase, "grey62"), bold=phase in (names.GROKKING, names.DIVERGED))


def kind_style(kind: str) -> Style:
    return Style(color=KIND_COLORS.get(kind, "white"))


def state_style(state: str) -> Style:
    return Style(color=STATE_COLORS.get(state, "white"))


def token_style(i: int, n: int) -> Style:
    """Colour of token ``i`` of ``n``: a hue wheel, so neighbours in Z_n look alike."""
    r, g, b = colorsys.hsv_to_rgb((i / max(n, 1)) % 1.0, 0.75, 1.0)
    return Style(color=f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})")
