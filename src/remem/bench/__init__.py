"""Benchmarks of recall quality on conversational datasets (`remem bench ...`)."""
