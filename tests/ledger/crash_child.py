"""Child process for the kill -9 test: appends from several threads and prints each
acknowledged ``index payload`` line only after the append returned (i.e. committed)."""

from __future__ import annotations

import sys
import threading

from healthmesh.ledger.log import TransparencyLog
from healthmesh.ledger.note import Ed25519Signer
from healthmesh.ledger.store import SqlStore


def main(db: str, tag: str) -> None:
    log = TransparencyLog(SqlStore(db), Ed25519Signer.from_seed("crash.test/log", b"\1" * 32))
    out = threading.Lock()

    def worker(t: int) -> None:
        j = 0
        while True:
            batch = [f"{tag}-{t}-{j}-{k}".encode() for k in range(1 + j % 5)]
            idx = log.append_raw(batch)
            with out:
                for i, p in zip(idx, batch, strict=True):
                    sys.stdout.write(f"{i} {p.decode()}\n")
                sys.stdout.flush()
            j += 1

    for t in range(4):
        threading.Thread(target=worker, args=(t,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
