"""The run detail: summary, sparklines, spectra, constellation and the run's alerts."""

from __future__ import annotations

from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.strip import Strip

from grokwatch.tui.alerts import AlertsList, wrap
from grokwatch.tui.canvas import Cell, LinesWidget, RunPanel, strip
from grokwatch.tui.constellation import ConstellationPanel
from grokwatch.tui.model import RunView
from grokwatch.tui.sparkline import SeriesPanel, fmt, session_alerts, session_of
from grokwatch.tui.spectrum import SpectraPanel
from grokwatch.tui.style import DIM, LABEL, WARN, phase_style, state_style
from grokwatch.wire.names import TRAIN_ACC, VAL_ACC


def names_hint(rv: RunView) -> str:
    """A hint when a run sends scalars but none of the names phases and alerts
    read (``train_acc``, ``val_acc``): its own names need mapping."""
    last = rv.get("last") or {}
    if not last or TRAIN_ACC in last or VAL_ACC in last:
        return ""
    return (f"no {TRAIN_ACC}/{VAL_ACC} received, so no phase or alerts: map your names "
            f"with Probe(..., names={{'your/acc': '{TRAIN_ACC}', ...}})")


def summary_lines(rv: RunView, width: int = 10_000) -> list[list[Cell]]:
    """Lines about the run: identity, phase, progress, health, then its config
    (wrapped to ``width`` at spaces, never cut)."""
    g = rv.get
    onset = g("onset_step")
    session = session_of(rv)
    l1: list[Cell] = [(rv.run, LABEL + Style(bold=True)),
                      (f"  session {session} (rerun)" if session > 1 else "", Style(color="gold3")),
                      (f"  {g('host', '-')} pid {g('pid', '-')}  ", DIM),
                      (rv.state, state_style(rv.state)), ("  phase ", DIM),
                      (rv.phase, phase_style(rv.phase)),
                      ("  onset ", DIM),
                      ("-" if onset is None else str(onset),
                       Style(color="magenta", bold=True) if onset is not None else DIM)]
    l2: list[Cell] = [(f"step {g('step', '-')}  train {fmt(rv.last('train_acc'))}  "
                       f"val {fmt(rv.last('val_acc'))}  "
                       + (f"{fmt(g('rate'))} msg/s" if rv.state == "live" else ""), LABEL)]
    c = g("counters") or {}
    bad = {k: c.get(k) for k in ("dropped", "gaps", "rejected", "errors") if c.get(k)}
    if bad:
        l2.append(("  " + " ".join(f"{k} {v}" for k, v in bad.items()), WARN))
    lines = [l1, l2]
    hint = names_hint(rv)
    if hint:
        lines += [[(c, Style(color="gold3"))] for c in wrap("hint: " + hint, max(8, width))]
    cfg = g("config") or {}
    if g("modulus"):
        cfg = {"p": g("modulus"), **cfg}
    if not cfg:
        return lines
    text = "config " + " ".join(f"{k}={v}" for k, v in cfg.items())
    return lines + [[(("       " if i else "") + c, DIM)]
                    for i, c in enumerate(wrap(text, max(8, width - 7)))]


class DetailHeader(RunPanel):
    """The run's summary lines."""

    def wanted_height(self, width: int) -> int:
        return 1 if self.rv is None else len(summary_lines(self.rv, width))

    def build(self, width: int, height: int) -> list[Strip]:
        if self.rv is None:
            return [strip([("no run selected: pick one in the runs view (1)", DIM)], width)]
        return [strip(ln, width) for ln in summary_lines(self.rv, width)]


class RunDetail(VerticalScroll, can_focus=True):
    """Everything about one run; stacks in a narrow terminal, two columns in a wide one."""

    DEFAULT_CSS = """
    RunDetail { height: 1fr; }
    RunDetail #detail-body { height: auto; layout: horizontal; }
    RunDetail #detail-alerts { height: auto; }
    RunDetail #detail-left, RunDetail #detail-right { height: auto; width: 1fr; }
    RunDetail #detail-right { padding-left: 1; }
    RunDetail.narrow #detail-body { layout: vertical; }
    RunDetail.narrow #detail-right { padding-left: 0; }
    """

    def __init__(self, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ascii = ascii
        self.rv: RunView | None = None
        self.header = DetailHeader(ascii=ascii, id="detail-header")
        self.series = SeriesPanel(ascii=ascii, id="detail-series")
        self.fourier = SpectraPanel(ascii=ascii, id="detail-fourier", kinds=("fourier",))
        self.sv = SpectraPanel(ascii=ascii, id="detail-sv", kinds=("sv",))
        self.constellation = ConstellationPanel(ascii=ascii, id="detail-constellation")
        self.alerts = AlertsList(lambda: session_alerts(self.rv) if self.rv else (),
                                 lambda: (self.rv.run, self.rv.version) if self.rv else 0,
                                 show_run=False, title="alerts of this run",
                                 auto_height=True, ascii=ascii, id="detail-alerts")
        self.alerts.can_focus = False

    def compose(self) -> ComposeResult:
        yield self.header
        with Container(id="detail-body"):
            with Vertical(id="detail-left"):
                yield self.series
                yield self.alerts
            with Vertical(id="detail-right"):
                yield self.fourier
                yield self.constellation
                yield self.sv

    def panels(self) -> list[LinesWidget]:
        return [self.header, self.series, self.fourier, self.sv, self.constellation,
                self.alerts]

    def show(self, rv: RunView | None) -> None:
        """Switch to another run (or none)."""
        if rv is self.rv:
            return
        self.rv = rv
        for p in self.panels():
            if hasattr(p, "show"):
                p.show(rv)  # type: ignore[attr-defined]
            else:
                p.invalidate()
        self.scroll_home(animate=False)

    def update_if_changed(self) -> None:
        """Redraw only the panels whose data moved."""
        for p in self.panels():
            p.update_if_changed()
