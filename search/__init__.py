"""Message search (PROTOCOL.md part 2, "Search"): one index beside the
message store, in the relational database (PostgreSQL full-text search,
SQLite FTS5), fed by the store's write path (messagestore.listeners) and
filtered by access inside the query. docs/search.md has the design."""
