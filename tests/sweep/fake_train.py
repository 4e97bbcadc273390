"""A stand-in training program for sweep tests: logs accuracies through the real probe.

``fake_train.py KIND STEPS [SLEEP]``: KIND ``mem`` fits train at once and never
generalizes, ``gen`` generalizes with training, ``crash`` exits 3 at step 5.
The run name and the sweep's labels come from the environment (the probe reads them).
"""

import sys
import time

from grokwatch.probe import Probe

kind, steps = sys.argv[1], int(sys.argv[2])
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
with Probe("unnamed", every=10**9) as probe:
    for step in range(0, steps + 1, 10):
        if kind == "crash" and step >= 50:
            sys.exit(3)
        frac = min(1.0, step / 100)
        val = frac if kind == "gen" else 0.02
        probe.log(step, train_acc=frac, val_acc=val, train_loss=1 - frac, val_loss=1 - val)
        time.sleep(pause)
