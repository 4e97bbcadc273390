"""The alert: what a detector says about a run, as plain data.

Shaped like Prometheus Alertmanager's alerts (status, fingerprint, labels,
RFC 3339 time) so that hook scripts written for other monitors feel at home.
The fingerprint names the alert *series* (run and kind), so a ``firing`` and
its later ``resolved`` share it, and hook cooldowns key on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grokwatch.wire import messages
from grokwatch.wire.messages import fingerprint, rfc3339
from grokwatch.wire.names import ALERT_KINDS, FIRING, STATUSES

__all__ = ["ALERT_KINDS", "STATUSES", "Alert", "fingerprint", "rfc3339"]


@dataclass
class Alert:
    """One alert event about one run."""

    run: str
    step: int
    t: float
    kind: str
    summary: str
    status: str = FIRING
    evidence: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.run, self.kind, (self.labels or {}).get("session"))

    def to_wire(self) -> messages.Alert:
        """The alert as the map clients, hooks and the store see (:func:`messages.alert`)."""
        return messages.alert(run=self.run, step=self.step, t=self.t, kind=self.kind,
                              summary=self.summary, status=self.status,
                              evidence=self.evidence, labels=self.labels)
