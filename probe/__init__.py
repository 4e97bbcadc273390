"""The probe: lives inside the training loop, measures geometry, publishes it.

::

    from grokwatch.probe import Probe

    with Probe("mod97-wd1", config={"lr": 1e-3}, modulus=97) as probe:
        for step in range(steps):
            ...  # forward, backward, optimizer step
            probe.log(step, train_loss=loss, train_acc=acc, val_acc=val_acc)
            probe.observe(step, model, embed=model.embed.weight)  # runs every 100 steps

``log`` is an append (about 2 us); a background thread batches records into
frames, sends them to the daemon (``$GROKWATCH_ENDPOINT``, else
``tcp://127.0.0.1:7710``) and keeps each one until the daemon acknowledges it.
Modules: :mod:`.probe` (the ``Probe``), :mod:`.outbox` (the bounded unacked
buffer), :mod:`.sender` (the socket thread), :mod:`.metrics` (what ``observe``
computes), :mod:`.spectral`, :mod:`.fourier`, :mod:`.norms` (the maths) and
:mod:`.backend` (numpy or torch, on the tensor's device).

Importing this package never imports torch; the metric code imports it only
when it is handed a tensor.
"""

from .probe import Probe

__all__ = ["Probe"]
