"""What a process is writing, seen from outside: its open output files in a folder, named or
not (an ``O_TMPFILE`` output has no name: only ``/proc/PID/fd`` shows it)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

TIMEOUT = 60.0


def output_sizes(pid: int, folder: Path) -> list[int]:
    """Sizes of the regular files ``pid`` holds open for writing in ``folder`` (Linux /proc)."""
    fds = Path(f"/proc/{pid}/fd")
    sizes = []
    prefix = f"{os.path.realpath(folder)}/"
    try:
        entries = list(fds.iterdir())
    except OSError:
        return []
    for fd in entries:
        try:
            target = os.readlink(fd)
            flags = int(Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text().split()[3], 8)
            if target.startswith(prefix) and flags & os.O_ACCMODE != os.O_RDONLY:
                sizes.append(os.stat(fd).st_size)
        except (OSError, ValueError, IndexError):
            continue  # closed meanwhile
    return sizes


def wait_for_output(proc: subprocess.Popen[bytes], folder: Path, at_least: int = 0) -> None:
    """Until ``proc`` has an output open in ``folder`` holding ``at_least`` bytes."""
    deadline = time.monotonic() + TIMEOUT
    while not any(size >= at_least for size in output_sizes(proc.pid, folder)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no output appeared"
        time.sleep(0.002)
