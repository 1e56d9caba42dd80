"""The person layer: topics, attributes, biography and form prefill from memory."""
