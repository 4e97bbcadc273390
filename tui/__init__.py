"""The terminal monitor (Textual). Speaks to the daemon only through the wire."""
