"""The daemon: one per box; ingests runs, persists them, detects phases, serves clients."""
