"""Independent pieces of work shared with a forked copy of this process, on a second core.

`in_two(count, job)` is `[job(i) for i in range(count)]`, with the child taking pieces from the
front and this process from the back until they meet. Each process writes only its own end in
shared memory and reads the other's, so a late read can make both do the piece where they
meet (this process keeps its own), never leave one undone. The child sends what it did back
pickled through a pipe, and leaves with `os._exit`: nothing of this process's state (buffered
output, open transactions, atexit handlers) runs twice. If the child fails or is killed, this
process does the child's pieces itself, so a result never depends on the child.

Fork before opening anything the child must not share (a database connection): the child
only runs the job, and `os._exit` closes nothing behind this process's back.
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import struct
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_ENDS = struct.Struct("qq")  # the next piece the child takes; the last this process took
_END = struct.Struct("q")


def in_two(count: int, job: Callable[[int], T], *,
           meanwhile: Callable[[], None] | None = None) -> list[T]:
    """job(i) for every i in range(count), in that order; on two processes when there are
    two cores and at least two pieces. meanwhile, if given, runs once here first, while the
    child starts on the pieces (this process then takes the pieces the child has not)."""
    if count < 2 or not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2:
        if meanwhile is not None:
            meanwhile()
        return [job(i) for i in range(count)]
    ends = mmap.mmap(-1, _ENDS.size)
    _ENDS.pack_into(ends, 0, 0, count)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(ends, job, write_end)
    os.close(write_end)
    reaped = False
    try:
        if meanwhile is not None:
            meanwhile()
        mine: dict[int, T] = {}
        while True:
            front, back = _ENDS.unpack_from(ends)
            if back - 1 < front:
                break
            _END.pack_into(ends, _END.size, back - 1)  # back only: front is the child's
            mine[back - 1] = job(back - 1)
        with os.fdopen(read_end, "rb") as stream:
            read_end = -1
            data = stream.read()
        _, status = os.waitpid(pid, 0)
        reaped = True
        # our own fork wrote it, through a pipe nobody else holds
        theirs: dict[int, T] = pickle.loads(data) if status == 0 and data else {}  # noqa: S301
        return [mine[i] if i in mine else theirs[i] if i in theirs else job(i)
                for i in range(count)]
    finally:
        if read_end >= 0:
            os.close(read_end)
        if not reaped:  # interrupted here: the child's work is no longer wanted
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        ends.close()


def _child(ends: mmap.mmap, job: Callable[[int], T], write_end: int) -> None:
    code = 1
    try:
        done: dict[int, T] = {}
        while True:
            front, back = _ENDS.unpack_from(ends)
            if front >= back:
                break
            _END.pack_into(ends, 0, front + 1)  # front only: back is the parent's
            done[front] = job(front)
        data = pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as stream:
            stream.write(data)
        code = 0
    except BaseException:  # noqa: BLE001, S110 - this process does the child's pieces then
        pass
    finally:
        os._exit(code)
