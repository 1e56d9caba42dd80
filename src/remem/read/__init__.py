"""The read path: analyse the query, gather candidates from several retrievers, fuse them."""
