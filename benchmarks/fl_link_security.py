"""What securing the Flower link costs: hub CA and SuperLink certificate issuance, SuperLink
start with TLS + SuperNode authentication against ``--insecure``, registering one SuperNode
key (``flwr supernode register``), and a SuperNode's start to its local port (secure and
insecure). Medians of ``--repeats`` runs: wall time and CPU time of this process plus its
finished children (``flwr supernode register`` is one; a SuperLink or SuperNode still running
when its start is timed is not counted, so their CPU reads ~0).

    .venv/bin/python benchmarks/fl_link_security.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from healthmesh.learning.deploy import SuperLink, SuperNode
from healthmesh.learning.tls import HubCA, LinkSecurity, new_node_key


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), os.times()
    fn()
    c1 = os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system)
    return time.perf_counter() - t0, cpu


def _report(name: str, samples: list[tuple[float, float]]) -> None:
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    print(f"{name:<40} median wall {wall * 1000:9.1f} ms   cpu {cpu * 1000:9.1f} ms   "
          f"(n={len(samples)}, load {Path('/proc/loadavg').read_text().split()[0]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca_runs = [_timed(lambda i=i: HubCA.load_or_create(root / f"ca{i}"))
                   for i in range(args.repeats)]
        _report("hub CA (P-256) created", ca_runs)
        ca = HubCA.load_or_create(root / "ca0")
        _report("SuperLink certificate issued", [
            _timed(lambda i=i: ca.issue_server(root / f"s{i}", ["127.0.0.1", "localhost"]))
            for i in range(args.repeats)])
        _report("SuperNode key pair (P-384)", [
            _timed(lambda i=i: new_node_key(Path(tempfile.mkdtemp(dir=tmp))))
            for i in range(args.repeats)])
        data = str(root / "none.npz")
        for label, security in (("insecure", LinkSecurity(insecure=True)),
                                ("TLS + node auth", LinkSecurity(tls_dir=root / "ca0"))):
            starts, registers, nodes = [], [], []
            for i in range(args.repeats):
                link = SuperLink(root / f"{label[:3]}-{i}", security=security)
                link.workdir.mkdir()  # type: ignore[union-attr]
                try:
                    starts.append(_timed(link.start))
                    node_dir = root / f"{label[:3]}-{i}" / "node"
                    node_dir.mkdir()
                    if link.insecure:
                        node = SuperNode(link.address, "n", data, node_dir, insecure=True)
                    else:
                        key = new_node_key(node_dir)
                        registers.append(_timed(lambda: link.register_node(key.public_key, "n")))
                        node = SuperNode(link.address, "n", data, node_dir,
                                         root_certificates=link.tls.ca_cert,  # type: ignore[union-attr]
                                         auth_key=key.private_path)
                    nodes.append(_timed(node.start))
                    node.stop()
                finally:
                    link.stop()
            _report(f"SuperLink start ({label})", starts)
            if registers:
                _report("SuperNode key registered", registers)
            _report(f"SuperNode start ({label})", nodes)


if __name__ == "__main__":
    main()
