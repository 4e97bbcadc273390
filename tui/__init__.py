"""The terminal monitor (Textual). Speaks to the daemon only through the wire.

``grokwatch tui [--connect HOST | --connect PUB,API] [--ascii]``

Views (number keys or letters): 1 runs table (sort ``s``/``r``, filter ``/``,
mark ``space``), 2 run detail (sparklines on one step axis with alerts
marked, Fourier spectrum with key frequencies and the shuffle null,
constellation, singular values, the run's alerts), 3/``c`` compare (marked
runs on one metric, ``m``/``M`` cycles it), 4/``a`` alerts and hook results.
``?`` lists every key; ``q`` quits.

Modules: :mod:`.model` (plain client-side state), :mod:`.feed` (the reader
thread), :mod:`.canvas` (cached line rendering), one module per widget
(:mod:`.runs_table`, :mod:`.sparkline`, :mod:`.spectrum`,
:mod:`.constellation`, :mod:`.compare`, :mod:`.alerts`, :mod:`.detail`,
:mod:`.preview`), :mod:`.style` (colours, glyphs, ASCII mode), :mod:`.app`.
"""
