"""The operator tool scripts/ferretdb_index.py, as the tests run it: the
index FerretDB 1.x's SQLite backend needs for its `_id` lookups, added after
the store's collections exist (docs/stores.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "scripts" / "ferretdb_index.py"


def sqlite_dir() -> str:
    """FerretDB's -sqlite-url directory when scripts/services runs FerretDB on SQLite."""
    return os.environ.get("FERRETDB_SQLITE_DIR", "")


def index(directory: str, database: str) -> str:
    return subprocess.run([sys.executable, str(TOOL), directory, "--database", database], check=True, capture_output=True, text=True).stdout


def lookup_plan(directory: str, database: str, collection: str) -> str:
    return subprocess.run([sys.executable, str(TOOL), directory, "--plan", database, collection], check=True, capture_output=True, text=True).stdout


def mongodb_database(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).path.strip("/") or "chat"
