"""Callbacks for the training frameworks people already use (each an optional extra).

- :mod:`grokwatch.integrations.lightning`: ``GrokwatchCallback`` for a Lightning
  ``Trainer`` (``pip install grokwatch[lightning]``);
- :mod:`grokwatch.integrations.hf`: ``GrokwatchCallback`` for a Hugging Face
  ``transformers.Trainer`` (``pip install grokwatch[hf]``).

Importing this package imports neither framework; each module imports its own.
:mod:`._common` holds what both share: metric-name mapping and run names.
"""
