"""Sweeps (issue 14): run a grid or random search of trainings and read their phases.

:mod:`.spec` reads a sweep spec (TOML), :mod:`.runner` runs its trials as processes
(or Ray tasks, :mod:`.ray_backend`) with early stop rules. The diagram of the daemon's
run summaries is :mod:`grokwatch.client.diagram` (the TUI draws it too).
"""
