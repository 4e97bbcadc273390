"""The alert: what a detector says about a run, as plain data.

Shaped like Prometheus Alertmanager's alerts (status, fingerprint, labels,
RFC 3339 time) so that hook scripts written for other monitors feel at home.
The fingerprint names the alert *series* (run and kind), so a ``firing`` and
its later ``resolved`` share it, and hook cooldowns key on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

ALERT_KINDS = ("memorized", "onset", "generalized", "diverged", "stalled", "lost", "dropped")
STATUSES = ("firing", "resolved")


def rfc3339(t: float) -> str:
    """Unix time as an RFC 3339 UTC timestamp with milliseconds."""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def fingerprint(run: str, kind: str) -> str:
    """Stable id of an alert series: same run and kind, same fingerprint."""
    return hashlib.sha1(f"{run}\x00{kind}".encode()).hexdigest()[:16]


@dataclass
class Alert:
    """One alert event about one run."""

    run: str
    step: int
    t: float
    kind: str
    summary: str
    status: str = "firing"
    evidence: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.run, self.kind)

    def to_wire(self) -> dict[str, Any]:
        """The alert as the map clients, hooks and the store see."""
        return {"run": self.run, "step": self.step, "time": rfc3339(self.t), "t": self.t,
                "kind": self.kind, "status": self.status, "fingerprint": self.fingerprint,
                "summary": self.summary, "evidence": self.evidence, "labels": self.labels}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_wire` (the fingerprint is derived again)."""
        return cls(run=d["run"], step=int(d["step"]), t=float(d["t"]), kind=d["kind"],
                   summary=d.get("summary", ""), status=d.get("status", "firing"),
                   evidence=dict(d.get("evidence") or {}), labels=dict(d.get("labels") or {}))
