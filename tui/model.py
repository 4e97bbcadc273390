"""The TUI's model: the client-side state of :mod:`grokwatch.client.state`.

The TUI keeps no state of its own beyond what its widgets hold: it draws a
:class:`~grokwatch.client.state.ClientState` (``Model`` here), which the feed's
reader thread fills from the daemon. The names the widgets use are re-exported.
"""

from __future__ import annotations

from grokwatch.client.state import (
    HOOK,
    MAX_EVENTS,
    MAX_POINTS,
    ClientState,
    Event,
    Prepared,
    RunView,
    Series,
    alert_event,
    hook_event,
    prepare_snapshot,
)

Model = ClientState

__all__ = ["HOOK", "MAX_EVENTS", "MAX_POINTS", "ClientState", "Event", "Model", "Prepared",
           "RunView", "Series", "alert_event", "hook_event", "prepare_snapshot"]
