"""A SQLite store's files, for the benchmarks that run on fresh copies of one store."""

from __future__ import annotations

import shutil
from pathlib import Path


def store_files(db: Path) -> list[Path]:
    """The database and its WAL and shared-memory files (the last two may not exist)."""
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def remove_store(db: Path) -> None:
    for path in store_files(db):
        path.unlink(missing_ok=True)


def copy_store(source: Path, target: Path) -> None:
    """A closed store (no process has it open) to TARGET, with its WAL if one was left."""
    remove_store(target)
    for frm, to in zip(store_files(source), store_files(target), strict=True):
        if frm.exists():
            shutil.copyfile(frm, to)
