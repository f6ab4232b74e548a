"""Imported first by every benchmark script, to fix ``sys.path``.

Run as a file (``python benchmarks/queue.py``), a script's folder comes first
on ``sys.path``, where ``queue.py`` would shadow the standard library's
``queue`` for everybody (multiprocessing and ``attachments.worker`` import it).
This puts the project root first and the folder last: ``benchmarks.*`` and the
standard library resolve as they should, and spawned worker processes, which
inherit the path and import the script again, still find this module.
"""

import contextlib
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

sys.path[:] = [
    ROOT,
    *(entry for entry in sys.path if os.path.abspath(entry or os.curdir) not in (HERE, ROOT)),
    HERE,
]


def stop_group(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop a worker started in a process group of its own: TERM, then KILL after 20 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
