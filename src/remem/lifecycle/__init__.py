"""A note's life after it is written: access counts, pins, expiry and archive (issue 16)."""
