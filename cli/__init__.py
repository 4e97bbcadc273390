"""The command line: the ``grokwatch`` console script, on top of every other part.

This is the only part allowed to import all the others (the layers are checked by
import-linter, see ``[tool.importlinter]`` in pyproject.toml). :mod:`.main`
dispatches; each command module adds its subcommands with ``register(sub)`` and
imports its heavy dependencies (torch, textual) only inside the command
functions, so ``grokwatch runs`` never pays for torch.
"""
