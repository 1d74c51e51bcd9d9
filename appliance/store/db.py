"""Opening SQLite connections: pysqlite3 (extension loading enabled) with sqlite-vec loaded."""

from __future__ import annotations

from pathlib import Path

import pysqlite3.dbapi2 as sqlite3
import sqlite_vec

from appliance.core.errors import Unavailable

Connection = sqlite3.Connection
DatabaseError = sqlite3.DatabaseError
IntegrityError = sqlite3.IntegrityError


def connect(path: Path, *, readonly: bool = False, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in WAL mode, autocommit (transactions are explicit), sqlite-vec loaded."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA secure_delete = ON")  # deleted rows and freed pages are overwritten with zeros
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise Unavailable(f"cannot open database {path}: {exc}") from exc
    return conn
