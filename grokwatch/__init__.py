"""grokwatch: watch neural networks learn.

The root package holds what every part shares: the wire (:mod:`grokwatch.wire`)
and the client side of the daemon's protocol (:mod:`grokwatch.client`). The parts
live in ``grokwatch.probe``, ``grokwatch.daemon`` and ``grokwatch.tui``; example
workloads in ``grokwatch.examples``; the command line, on top of them all, in
``grokwatch.cli``.
"""

__version__ = "0.1.0"
