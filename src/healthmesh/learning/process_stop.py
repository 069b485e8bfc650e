"""Stopping Flower's processes for good: each process healthmesh starts (a SuperLink, a
SuperNode) leads a session of its own and is stopped with its whole process group; what Flower
started for it in other sessions (``flower-superexec``, and the ``flwr-serverapp`` /
``flwr-clientapp`` processes that one starts, each naming its parent with ``--parent-pid``) is
found through ``/proc`` and stopped too. Whatever ignores SIGTERM (the ServerApp of a run that
timed out does) is killed after ``grace`` seconds; a pid is signalled only while its start time
shows it is still the same process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group ``proc`` leads (it was spawned in a session of its own; its
    children that did not start their own session are in the group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], grace: float = 5.0) -> None:
    """Stop Flower processes started in sessions of their own (see the module docstring)."""
    leaders = {p.pid for p in procs}
    launched = _launched_by(leaders)  # while the chain still names its parents
    for proc in procs:
        # also when the leader already exited: a SuperNode the SuperLink refused exits while
        # its flower-superexec child keeps retrying
        _signal_group(proc, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    # stragglers: Flower starts flower-superexec in a session of its own, and the ServerApp
    # of a run that timed out ignores SIGTERM and outlives its SuperLink
    launched |= _launched_by(leaders | launched)  # and what they started meanwhile
    # a pid is signalled only while it is the same process (its start time unchanged)
    started = {pid: _start_time(pid) for pid in launched}
    live = {pid for pid, at in started.items() if at is not None}
    _kill_same(live, started, signal.SIGTERM)
    end = time.monotonic() + grace
    groups = [p for p in procs if _group_alive(p)]
    while (groups or live) and time.monotonic() < end:
        time.sleep(0.1)
        groups = [p for p in groups if _group_alive(p)]
        live = {pid for pid in live if _start_time(pid) == started[pid]}
    for proc in groups:
        _signal_group(proc, signal.SIGKILL)
    _kill_same(live, started, signal.SIGKILL)


def _start_time(pid: int) -> str | None:
    """The process's start time (``/proc/<pid>/stat`` field 22); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == "Z":  # a zombie has exited
        return None
    return fields[19]


def _kill_same(pids: set[int], started: Mapping[int, str | None], sig: int) -> None:
    for pid in pids:
        if started.get(pid) is not None and _start_time(pid) == started[pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _launched_by(parents: set[int]) -> set[int]:
    """Flower processes started for ``parents``, and for those, ...: each names its parent in
    its arguments (``--parent-pid``), which survive re-parenting (Linux ``/proc``; empty
    elsewhere)."""
    found: set[int] = set()
    frontier = set(parents)
    while frontier:
        new = set()
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--parent-pid" not in argv:
                continue
            at = argv.index(b"--parent-pid") + 1
            if at < len(argv) and argv[at].isdigit() and int(argv[at]) in frontier:
                new.add(int(entry.name))
        new -= found
        found |= new
        frontier = new
    return found
