"""The index FerretDB 1.x's SQLite backend needs to serve `_id` lookups.

FerretDB 1.24 pushes a filter that is `{_id: <value>}` alone down to SQLite
as `WHERE _ferretdb_sjson->'$._id' = ?`, but the unique index it creates for
`_id` is on `_ferretdb_sjson->"_id"`. SQLite matches an expression index by
the expression's text, so it never uses that index for the lookup: every
find, update or delete by `_id` scans the collection's table (its
`EXPLAIN QUERY PLAN` says SCAN; 185 ms for one lookup in 200,000 small
documents here). Upstream: FerretDB/FerretDB#3340 (SQLite indexes), #4646
(the same on its PostgreSQL backend); FerretDB 2 is a different engine.

`add_id_indexes` adds to each collection table of one FerretDB database file
an index on exactly the expression the pushdown uses (0.7 ms for the same
lookup). It changes no document and no FerretDB metadata: FerretDB's own
unique index still enforces `_id`, and dropping a collection drops the table
with its indexes. Building the index holds SQLite's write lock: instant on
the empty collections of a first `migrate`, seconds on an existing large
one, during which FerretDB's writes wait (its busy timeout is 10 s). It
needs the database file, so it works only where the
application runs next to a FerretDB that uses the SQLite backend: set
`FERRETDB_SQLITE_DIR` to the directory of FerretDB's `-sqlite-url`
(scripts/services prints it) and `migrate` adds the indexes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

PUSHDOWN_EXPRESSION = "_ferretdb_sjson->'$._id'"
INDEX_SUFFIX = "_chat_id_pushdown"


def database_file(directory: str | Path, database: str) -> Path:
    return Path(directory) / f"{database}.sqlite"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def add_id_indexes(path: Path) -> list[str]:
    """Create the pushdown index on every collection table of the FerretDB
    database file `path` that lacks it; returns the tables it indexed."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a FerretDB SQLite database file (is FERRETDB_SQLITE_DIR FerretDB's -sqlite-url directory?)")
    # mode=rw: never create a file FerretDB would then take for a database.
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        tables = [row[0] for row in connection.execute("SELECT table_name FROM _ferretdb_collections")]
        existing = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        created = []
        for table in tables:
            index = table + INDEX_SUFFIX
            if index in existing:
                continue
            connection.execute(f"CREATE INDEX IF NOT EXISTS {_quoted(index)} ON {_quoted(table)} ({PUSHDOWN_EXPRESSION})")
            created.append(table)
        connection.commit()
        return created
    finally:
        connection.close()


def lookup_plan(path: Path, collection: str) -> str:
    """SQLite's plan for FerretDB's `_id` lookup in `collection` (tests)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        (table,) = connection.execute("SELECT table_name FROM _ferretdb_collections WHERE name = ?", (collection,)).fetchone()
        rows = connection.execute(f"EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM {_quoted(table)} WHERE {PUSHDOWN_EXPRESSION} = ?", ("x",))
        return " ".join(row[-1] for row in rows)
    finally:
        connection.close()
