"""Running mtctl as a real process and measuring what it took."""

from __future__ import annotations

import os
import subprocess


class MeasuredPopen(subprocess.Popen):
    """Popen that keeps the child's peak RSS (KiB) from wait4 when it reaps it."""

    max_rss = 0

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self.max_rss = usage.ru_maxrss
        return pid, status
