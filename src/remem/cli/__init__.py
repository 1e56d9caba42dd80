"""The `remem` command: thin, it parses, calls the library, prints."""
