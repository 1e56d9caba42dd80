"""Adapters that plug remem into other frameworks (each behind its own extra)."""
