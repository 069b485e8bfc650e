"""HL7 v2 ingestion benchmarks on the shared FHIR-Converter/python-hl7 messages, replicated.

1. parse + map (messages/s), against python-hl7's ``hl7.parse`` alone on the same messages;
2. end to end into a SQLite node (messages/s), against writing the already-converted
   resources straight into the store (no parse, no map, no idempotence check);
3. MLLP round trip with ACK over loopback: messages/s and per-message latency.

Copies differ by sending facility (MSH-4), so every copy is new data with its own ids.
Each end-to-end feed runs with one process and with ``--workers`` processes, ``--repeat``
times each (medians).
Usage: .venv/bin/python benchmarks/ingest_hl7_bench.py [--messages 2000] [--repeat 5]
       [--e2e-messages 1000] [--mllp-messages 1000] [--workers 2] [--parts parse,e2e,mllp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import hl7

from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.adapter import Converted
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.hl7v2.decode import decode_message, split_messages
from healthmesh.ingest.mllp import MllpListener, send
from healthmesh.ingest.pipeline import Pipeline
from healthmesh.ingest.quarantine import QuarantineStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hl7v2"


def shared_messages(convertible_only: bool) -> list[bytes]:
    files = sorted(DATA.glob("ms-fhir-converter/samples/*.hl7")) + sorted(
        DATA.glob("python-hl7/*.hl7")
    )
    out = [raw.data for f in files for raw in split_messages(f.read_bytes())]
    if convertible_only:
        adapter = Hl7v2Adapter("bench")
        out = [m for m in out if isinstance(next(adapter.convert(m, source="x")), Converted)]
    return out


def replicate(messages: list[bytes], n: int) -> list[bytes]:
    """n messages cycling through ``messages``; copy k gets sending facility suffix k."""
    out = []
    for i in range(n):
        m = messages[i % len(messages)]
        k = i // len(messages)
        head, rest = m.split(b"\r", 1)
        f = head.split(b"|")
        if len(f) > 3:
            f[3] = f[3].split(b"^")[0] + b"-" + str(k).encode()
        out.append(b"|".join(f) + b"\r" + rest)
    return out


def median_rate(fn: object, n: int, repeat: int) -> tuple[float, float, float]:
    """(messages per wall second, per CPU second, median wall seconds) over ``repeat`` runs.

    CPU time is printed too because this machine is shared: wall time depends on the load.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return n / wall, n / cpu, wall


def bench_parse_map(msgs: list[bytes], repeat: int, label: str) -> None:
    adapter = Hl7v2Adapter("bench")
    raws = [next(split_messages(m)) for m in msgs]
    texts = [decode_message(r).text for r in raws]

    def ours() -> None:
        for r in raws:
            adapter.convert_one(r, source="b")

    sample = texts[: min(len(texts), 300)]  # python-hl7 is slow: a sample gives its rate

    def python_hl7() -> None:
        for t in sample:
            hl7.parse(t)

    ours_rate, ours_cpu, ours_s = median_rate(ours, len(msgs), repeat)
    base_rate, base_cpu, _ = median_rate(python_hl7, len(sample), repeat)
    print(
        f"parse+map ({label}): {len(msgs)} messages, median {ours_s:.3f} s = "
        f"{ours_rate:,.0f} msg/s wall, {ours_cpu:,.0f} msg/CPU-s (target >= 2,000)"
    )
    print(
        f"  baseline python-hl7 hl7.parse only: {base_rate:,.0f} msg/s wall, {base_cpu:,.0f} "
        f"msg/CPU-s; ours (decode+parse+map) / baseline = {ours_cpu / base_cpu:.1f}x"
    )


def bench_end_to_end(
    msgs: list[bytes], repeat: int, label: str, workers: int = 1, *, baseline: bool = True
) -> None:
    """Median of ``repeat`` runs, each into a new SQLite node; the load average is printed
    beside the figures (wall rates depend on it on a shared machine)."""
    rates, cpu_rates, base_rates, summaries = [], [], [], []
    loads = [os.getloadavg()[0]]
    adapter = Hl7v2Adapter("bench")
    data = b"".join(msgs)
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            db = Path(d) / "node.sqlite"
            pipe = Pipeline(FhirStore(db), QuarantineStore(db), "bench")
            t, c = time.perf_counter(), time.process_time()
            s = pipe.ingest(adapter, data, "bench.hl7", workers=workers)
            rates.append(len(msgs) / (time.perf_counter() - t))
            cpu_rates.append(len(msgs) / (time.process_time() - c))
            summaries.append(s)
            pipe.store.close()
            pipe.quarantine.close()
        loads.append(os.getloadavg()[0])
        if not baseline:
            continue
        with tempfile.TemporaryDirectory() as d:
            store = FhirStore(Path(d) / "node.sqlite")
            converted = [o for o in adapter.convert(data, source="b") if isinstance(o, Converted)]
            c = time.process_time()
            for rec in converted:
                with store.writing() as tx:
                    for res in rec.resources:
                        tx.update(res["resourceType"], res["id"], res)
            base_rates.append(len(converted) / (time.process_time() - c))
            store.close()
    s = summaries[0]
    assert s.balanced()
    med, cpu = statistics.median(rates), statistics.median(cpu_rates)
    cpu_note = "parent-process CPU only" if workers > 1 else "msg/CPU-s"
    print(
        f"end to end into SQLite ({label}, workers={workers}): {len(msgs)} messages, median "
        f"of {repeat} {med:,.0f} msg/s wall (runs: {', '.join(f'{r:,.0f}' for r in rates)}), "
        f"{cpu:,.0f} {cpu_note} (target >= 500); load {min(loads):.1f}-{max(loads):.1f}; "
        f"{s.line()}; {s.resources_written} versions"
    )
    if base_rates:
        base = statistics.median(base_rates)
        print(
            f"  baseline: the same converted records written one transaction each with "
            f"tx.update (no parse/map): {base:,.0f} records/CPU-s; ours/baseline = "
            f"{cpu / base:.2f}"
        )


def distinct(messages: list[bytes]) -> list[bytes]:
    """Each message its own patient, visit and orders (a feed of mostly new data): every
    copy's sending facility is unique."""
    out = []
    for i, m in enumerate(messages):
        head, rest = m.split(b"\r", 1)
        f = head.split(b"|")
        if len(f) > 3:
            f[3] = b"F" + str(i).encode()
        out.append(b"|".join(f) + b"\r" + rest)
    return out


def bench_mllp(msgs: list[bytes], clients: int) -> None:
    async def run() -> tuple[float, list[float]]:
        with tempfile.TemporaryDirectory() as d:
            db = Path(d) / "node.sqlite"
            pipe = Pipeline(FhirStore(db), QuarantineStore(db), "bench")
            listener = MllpListener(pipe, Hl7v2Adapter("bench"))
            server = await listener.start("127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            lat: list[float] = []
            chunks = [msgs[i::clients] for i in range(clients)]

            async def stream(chunk: list[bytes]) -> None:
                last = [time.perf_counter()]

                def tick(_: bytes) -> None:
                    now = time.perf_counter()
                    lat.append(now - last[0])
                    last[0] = now

                await send("127.0.0.1", port, chunk, on_ack=tick)

            t = time.perf_counter()
            async with server:
                await asyncio.gather(*(stream(c) for c in chunks))
            wall = time.perf_counter() - t
            listener.close()
            assert listener.summary.balanced()
            pipe.store.close()
            pipe.quarantine.close()
            return wall, lat

    wall, lat = asyncio.run(run())
    lat.sort()
    p95 = lat[int(0.95 * (len(lat) - 1))]
    print(
        f"MLLP round trip with ACK, {clients} client(s): {len(msgs)} messages in {wall:.2f} s "
        f"= {len(msgs) / wall:,.0f} msg/s; latency median {statistics.median(lat) * 1e3:.2f} ms, "
        f"p95 {p95 * 1e3:.2f} ms"
    )


def compact(n: int) -> list[bytes]:
    """Generated compact messages of a Chinese hospital feed (ADT^A01 and ORU^R01 with five
    results, UTF-8 names, resident IDs): a second, lighter workload next to the shared
    FHIR-Converter samples, which are deliberately maximal (every field filled)."""
    out = []
    for i in range(n):
        head = f"MSH|^~\\&|HIS|H1|||20240105083000+0800||{{}}|C{i}|P|2.5|||||CHN|UNICODE UTF-8\r"
        pid = (
            f"PID|1||M{i}^^^H1^MR~11010519491231002X^^^^NNCHN||王^小明{i % 10}||19491231|F|||"
            f"朝阳路{i}号^^北京^北京^100000^CHN^H||13800138000^PRN^CP\r"
        )
        if i % 2 == 0:
            body = (
                head.format("ADT^A01^ADT_A01")
                + "EVN|A01|20240105083000+0800\r"
                + pid
                + (
                    f"PV1|1|I|W1^101^1||||D01^李^医生||||||||||||V{i}|||||||||||||||||||||||||"
                    "20240105080000+0800\r"
                )
            )
        else:
            obr = f"OBR|1|P{i}|F{i}|24331-1^血脂^LN|||202401050800\r"
            body = head.format("ORU^R01^ORU_R01") + pid + obr
            for k, (code, val, unit) in enumerate(
                [
                    ("2093-3", "5.2", "mmol/L"),
                    ("2571-8", "1.7", "mmol/L"),
                    ("2085-9", "1.3", "mmol/L"),
                    ("13457-7", "3.1", "mmol/L"),
                    ("2345-7", "6.1", "mmol/L"),
                ],
                1,
            ):
                body += f"OBX|{k}|NM|{code}^^LN||{val}|{unit}^^UCUM|||||F\r"
        out.append(body.encode())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--e2e-messages", type=int, default=1000)
    ap.add_argument("--mllp-messages", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel e2e run")
    ap.add_argument("--parts", default="parse,e2e,mllp", help="comma list: parse,e2e,mllp")
    args = ap.parse_args()
    every = shared_messages(convertible_only=False)
    good = shared_messages(convertible_only=True)
    print(f"shared messages: {len(every)} ({len(good)} convertible)")
    parts = set(args.parts.split(","))
    if "parse" in parts:
        bench_parse_map(replicate(every, args.messages), args.repeat, "shared messages replicated")
        bench_parse_map(compact(args.messages), args.repeat, "compact generated messages")
    if "e2e" in parts:
        e2e = replicate(good, args.e2e_messages)
        feeds = [
            (compact(args.e2e_messages), "compact generated messages"),
            (e2e, "shared messages replicated"),
            (distinct(e2e), "each message a new patient"),
        ]
        for msgs, label in feeds:
            for workers in sorted({1, args.workers}):
                bench_end_to_end(msgs, args.repeat, label, workers, baseline=workers == 1)
    if "mllp" in parts:
        bench_mllp(replicate(good, args.mllp_messages), 1)
        bench_mllp(replicate(good, args.mllp_messages), 4)


if __name__ == "__main__":
    main()
