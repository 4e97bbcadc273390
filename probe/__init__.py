"""The probe: lives inside the training loop, measures geometry, publishes it.

``from grokwatch.probe import Probe``. Importing this package never imports
torch; the metric code imports it only when it is handed a tensor.
"""

from .probe import Probe

__all__ = ["Probe"]
