"""`formats.forked.in_two`: work shared with a forked child gives what one process would,
whatever the child does."""

from __future__ import annotations

import os
import signal

import pytest

from mtctl.formats.forked import in_two

TWO_CORES = len(os.sched_getaffinity(0)) >= 2


def slow_square(i: int) -> tuple[int, int]:
    sum(range(20_000))  # long enough for both processes to take pieces
    return i * i, os.getpid()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 50])
def test_every_piece_once_in_order(count: int) -> None:
    results = in_two(count, slow_square)
    assert [square for square, _ in results] == [i * i for i in range(count)]


@pytest.mark.skipif(not TWO_CORES, reason="one core: everything runs here")
def test_both_processes_take_pieces() -> None:
    pids = {pid for _, pid in in_two(200, slow_square)}
    assert os.getpid() in pids
    assert len(pids) == 2


@pytest.mark.skipif(not TWO_CORES, reason="one core: everything runs here")
def test_a_child_that_fails_leaves_its_pieces_to_the_parent() -> None:
    parent = os.getpid()

    def job(i: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("the child breaks")
        return i * 2

    assert in_two(40, job) == [i * 2 for i in range(40)]


@pytest.mark.skipif(not TWO_CORES, reason="one core: everything runs here")
def test_a_child_killed_midway_leaves_its_pieces_to_the_parent() -> None:
    parent = os.getpid()

    def job(i: int) -> int:
        if os.getpid() != parent and i == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        sum(range(20_000))
        return i + 1

    assert in_two(40, job) == [i + 1 for i in range(40)]


def test_the_parents_error_is_raised_and_the_child_reaped() -> None:
    def job(i: int) -> int:
        sum(range(20_000))
        if i == 39:  # the parent's first piece
            raise ValueError("bad piece")
        return i

    with pytest.raises(ValueError, match="bad piece"):
        in_two(40, job)
    with pytest.raises(ChildProcessError):  # no child left behind, not even a zombie
        os.waitpid(-1, os.WNOHANG)
