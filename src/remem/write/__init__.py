"""The write path: validate input, turn it into episodes, and derive notes from them."""
