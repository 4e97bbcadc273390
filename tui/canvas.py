"""A base widget that draws itself as cached lines (``render_line``), not child widgets.

Subclasses implement :meth:`LinesWidget.build` (width, height -> list of
Strips) and :meth:`LinesWidget.data_key` (anything that changes when the
data does). Lines are rebuilt only when the key or the size changed, so a
message that touches another run costs this widget nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    from grokwatch.tui.model import RunView

Cell = tuple[str, Style | None]


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences, newlines) shown as ``?``.

    Run names are checked by the wire, but hosts, configs, alert summaries and
    hook details are not: drawn raw, an ESC in them would reach the terminal.
    """
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


# The building widget's own style (its background and colour), set by
# LinesWidget.render_line around build(): strips carry it from the start
# instead of each line being restyled (a Strip is costly to make in Textual).
_base: Style | None = None


def strip(parts: Iterable[Cell], width: int) -> Strip:
    """One line from (text, style) parts, cropped or padded to ``width`` cells.

    Every string drawn by this package passes here, so this is where text from
    the wire is made safe for the terminal.
    """
    base = _base
    # Adjacent parts in the same style become one segment: Textual's cost per
    # line grows with its segment count.
    texts: list[str] = []
    styles: list[Style | None] = []
    for t, st in parts:
        if not t:
            continue
        if texts and st == styles[-1]:
            texts[-1] += t
        else:
            texts.append(t)
            styles.append(st)
    segs: list[Segment] = []
    total = 0
    for t, st in zip(texts, styles):
        t = printable(t)
        total += cell_len(t)
        segs.append(Segment(t, base + st if base is not None and st is not None
                            else st or base))
    if total < width:
        segs.append(Segment(" " * (width - total), base))
    line = Strip(segs, max(total, width))
    return line.crop(0, width) if total > width else line


def blank(width: int) -> Strip:
    """An empty line in the building widget's style."""
    return Strip.blank(width, _base)


def text_lines(lines: list[list[Cell]], width: int, height: int) -> list[Strip]:
    """Strips for ``lines``, padded with blanks to ``height``."""
    out = [strip(ln, width) for ln in lines[:height]]
    out += [blank(width)] * (height - len(out))
    return out


class LinesWidget(Widget):
    """Draws lines from :meth:`build`, cached until the data or the size changes."""

    DEFAULT_CSS = "LinesWidget { height: auto; }"

    def __init__(self, *, ascii: bool = False, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.ascii = ascii
        self._cache_key: Hashable = None
        self._lines: list[Strip] = []
        self.builds = 0  # how often lines were rebuilt (tests check coalescing)
        self._height: int | None = -1  # wanted height at the last refresh
        self._blank = Strip.blank(0)

    def data_key(self) -> Hashable:
        """Changes whenever what this widget shows changes."""
        return None

    def build(self, width: int, height: int) -> list[Strip]:
        """All lines for this size."""
        raise NotImplementedError

    def wanted_height(self, width: int) -> int:
        """Rows this widget wants (used for ``height: auto``)."""
        return 1

    def get_content_height(self, container, viewport, width: int) -> int:
        return self.wanted_height(width)

    def update_if_changed(self) -> bool:
        """Refresh when the data key moved; return whether it did.

        A layout pass (costly: the whole screen) only when the wanted height
        changed; otherwise just this widget's lines are redrawn.
        """
        if self.data_key() != (self._cache_key[0] if self._cache_key else None):
            self._refresh_sized()
            return True
        return False

    def invalidate(self) -> None:
        self._cache_key = None
        self._refresh_sized()

    def _refresh_sized(self) -> None:
        hs = self.styles.height
        h = self.wanted_height(self.size.width) if hs is not None and hs.is_auto else None
        self.refresh(layout=h != self._height)
        self._height = h

    def render_line(self, y: int) -> Strip:
        w, h = self.size.width, self.size.height
        key = (self.data_key(), w, h)
        if key != self._cache_key:
            global _base
            _base = self.rich_style
            try:
                self._lines = self.build(w, h) if w > 0 and h > 0 else []
                self._blank = Strip.blank(w, _base)
            finally:
                _base = None
            self._cache_key = key
            self.builds += 1
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return self._blank


class RunPanel(LinesWidget):
    """Lines about one run (or none); :meth:`show` switches the run and redraws.

    The data key is the run's name and version; panels that draw only part of
    a run (its spectra, its points) key on that part instead.
    """

    def __init__(self, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(ascii=ascii, id=id)
        self.rv: RunView | None = None

    def show(self, rv: RunView | None) -> None:
        self.rv = rv
        self.invalidate()

    def data_key(self) -> Hashable:
        return None if self.rv is None else (self.rv.run, self.rv.version)
