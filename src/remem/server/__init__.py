"""remem over HTTP: the REST API (`app`), its API-key tenancy, and the chat proxy (`proxy`)."""
