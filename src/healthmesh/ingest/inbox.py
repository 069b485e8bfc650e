"""An inbox folder watched by the node: new files are ingested, then moved to
``processed/`` (at least one record converted) or ``quarantine/`` (nothing converted, or the
file could not be read as its format). Individual bad records are in the quarantine table
either way.

Polling, not inotify: it works the same on network shares (where hospitals drop exports)
and in containers, and a file is taken only once its size and mtime stopped changing, so a
file still being copied is not read half-written.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from healthmesh.errors import HealthmeshError
from healthmesh.ingest.adapter import Adapter, Rejected
from healthmesh.ingest.pipeline import Pipeline, Summary

log = logging.getLogger(__name__)

PROCESSED = "processed"
QUARANTINE = "quarantine"


class Inbox:
    """Watches ``folder``; ``adapter_for(path)`` picks the adapter (raises for unknown)."""

    def __init__(
        self,
        folder: Path,
        pipeline: Pipeline,
        adapter_for: Callable[[Path], Adapter],
        *,
        settle_seconds: float = 1.0,
    ) -> None:
        self.folder = folder
        self.pipeline = pipeline
        self.adapter_for = adapter_for
        self.settle_seconds = settle_seconds
        self._seen: dict[Path, tuple[int, float]] = {}
        for sub in (PROCESSED, QUARANTINE):
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def _ready(self, path: Path) -> bool:
        st = path.stat()
        sig = (st.st_size, st.st_mtime)
        if self.settle_seconds <= 0:
            return True
        if self._seen.get(path) != sig:
            self._seen[path] = sig
            return False
        return time.time() - st.st_mtime >= self.settle_seconds

    def scan_once(self) -> Summary:
        """Process every settled file now in the folder; return the combined counts."""
        total = Summary()
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or path.name.startswith(".") or not self._ready(path):
                continue
            total.add(self.process(path))
            self._seen.pop(path, None)
        return total

    def process(self, path: Path) -> Summary:
        data = path.read_bytes()
        try:
            adapter = self.adapter_for(path)
        except HealthmeshError as exc:
            summary = Summary()
            rejected = Rejected(path.name, data, exc.message, "file")
            self.pipeline.write_one("file", rejected, summary)
            self._move(path, QUARANTINE)
            return summary
        summary = self.pipeline.ingest(adapter, data, path.name)
        self._move(path, PROCESSED if summary.converted else QUARANTINE)
        log.info("inbox file %s: %s", path.name, summary.line())
        return summary

    def _move(self, path: Path, sub: str) -> None:
        target = self.folder / sub / path.name
        if target.exists():
            target = target.with_name(f"{path.stem}.{time.time_ns()}{path.suffix}")
        shutil.move(str(path), target)

    def watch(self, stop: threading.Event, interval: float = 1.0) -> Summary:
        """Scan every ``interval`` seconds until ``stop`` is set."""
        total = Summary()
        while not stop.is_set():
            total.add(self.scan_once())
            stop.wait(interval)
        return total
