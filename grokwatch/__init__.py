"""grokwatch: watch neural networks learn.

The root package holds what every part shares: the wire (:mod:`grokwatch.wire`),
the client side of the daemon's protocol (:mod:`grokwatch.client`) and the
command line (:mod:`grokwatch.cli`). The parts live in ``grokwatch.probe``,
``grokwatch.daemon`` and ``grokwatch.tui``; example workloads in
``grokwatch.examples``.
"""

__version__ = "0.1.0"
