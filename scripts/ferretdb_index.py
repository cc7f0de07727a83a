#!/usr/bin/env python3
"""Operator tool: the index FerretDB 1.x's SQLite backend needs to serve
`_id` lookups. Not part of the server: run it after `manage.py migrate`
(which creates the MongoDB store's collections) on a machine that holds
FerretDB's SQLite files:

    scripts/ferretdb_index.py DIR [--database NAME ...]   # DIR: FerretDB's -sqlite-url
    scripts/services ferretdb-index [NAME ...]            # the FerretDB scripts/services runs
    scripts/ferretdb_index.py DIR --plan DATABASE COLLECTION

FerretDB 1.24 pushes a filter that is `{_id: <value>}` alone down to SQLite
as `WHERE _ferretdb_sjson->'$._id' = ?`, but the unique index it creates for
`_id` is on `_ferretdb_sjson->"_id"`. SQLite matches an expression index by
the expression's text, so it never uses that index for the lookup: every
find, update or delete by `_id` scans the collection's table (its
`EXPLAIN QUERY PLAN` says SCAN). Upstream: FerretDB/FerretDB#3340 (SQLite indexes), #4646
(the same on its PostgreSQL backend); FerretDB 2 is a different engine.

`add_id_indexes` adds to each collection table of one FerretDB database file
an index on exactly the expression the pushdown uses. It changes no document and no FerretDB metadata: FerretDB's own
unique index still enforces `_id`, and dropping a collection drops the table
with its indexes. Building the index holds SQLite's write lock: instant on
the empty collections of a first `migrate`, seconds on an existing large
one, during which FerretDB's writes wait (its busy timeout is 10 s). It
needs the database files, so it runs where FerretDB runs. docs/stores.md
has the measurements. Standard library only.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
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
        raise FileNotFoundError(f"{path} is not a FerretDB SQLite database file (is the directory FerretDB's -sqlite-url?)")
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
    """SQLite's plan for FerretDB's `_id` lookup in `collection`."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        (table,) = connection.execute("SELECT table_name FROM _ferretdb_collections WHERE name = ?", (collection,)).fetchone()
        rows = connection.execute(f"EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM {_quoted(table)} WHERE {PUSHDOWN_EXPRESSION} = ?", ("x",))
        return " ".join(row[-1] for row in rows)
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Index FerretDB 1.x SQLite tables for its _id lookups.")
    parser.add_argument("directory", help="FerretDB's -sqlite-url directory")
    parser.add_argument("--database", action="append", default=[], help="only this database (repeatable); default: every *.sqlite file")
    parser.add_argument("--plan", nargs=2, metavar=("DATABASE", "COLLECTION"), help="print SQLite's plan for an _id lookup instead")
    args = parser.parse_args(argv)
    if args.plan:
        print(lookup_plan(database_file(args.directory, args.plan[0]), args.plan[1]))
        return 0
    files = [database_file(args.directory, name) for name in args.database] or sorted(Path(args.directory).glob("*.sqlite"))
    if not files:
        print(f"no FerretDB database files in {args.directory} (run it after `manage.py migrate`)")
    try:
        for path in files:
            created = add_id_indexes(path)
            print(f"{path.name}: indexed {len(created)} collection table(s)")
    except (OSError, sqlite3.Error) as exc:
        print(f"ferretdb_index: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
