"""A SQLite store's files, for the benchmarks that run on fresh copies of one store, and a
reference of the machine's speed for their absolute rates."""

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


def reference_ms() -> float:
    """Milliseconds of a pure-Python reference loop (best of 5), printed beside absolute rates:
    on a shared machine the CPU's speed varies, and the same code's rate with it."""
    import timeit

    return min(timeit.repeat("sum(range(1_000_000))", number=5, repeat=5)) / 5 * 1000
