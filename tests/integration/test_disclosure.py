"""Disclosure, proven on a real federation.

One federation for the module, built from the commands of docs/federation.md (TLS and
node authentication on, as deployed), with a recording proxy of this test between the
three ``sscjak-node serve`` processes and the SuperLink's Fleet API on 127.0.0.1. The
proxy terminates TLS with the SuperLink's own certificate (the nodes pin the study CA)
and connects on over TLS, so it keeps every plaintext byte a node sends — what an
``--insecure`` deployment would show on the wire, without changing how nodes run. (An
``--insecure`` federation cannot run an analysis here: nodes are told apart by their
node-authentication keys, which Flower only uses with TLS.) The SuperLink's database
files are copied whenever they change, so what it stored is inspected too.

Three centres written by ``disclosure_support`` (distinctive pseudonyms, one *edge
patient* whose 12-month visit lies between 2 and 2.5 months from its target).

Shown here: no patient id, date or measurement in any byte a node sent or the SuperLink
stored (positive controls: the same scan finds them in the CSV files and in unmasked
summaries; the capture holds the masked vectors and the revealed seeds — together they
give the plain sum — and the database holds them too); small cells are suppressed end to
end; a plan the centres did not approve is refused, with the audit lines; the
differencing plan (window 2 → 2.5 months: one patient more) is refused until approved,
its approval warns and needs ``--yes``, and the two results indeed give away that
patient's change; with two nodes online ``run`` fails clearly and writes no results
file.

Tests run in file order (the last one stops a node). Every process is stopped by PID
at teardown and the logs are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from disclosure_support import (
    CENTRE_NAMES,
    leak_patterns,
    scan,
    write_disclosure_centres,
)
from ports import free_port

from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.plan import Plan
from sscjak.shared.process_control import ProcessGroup, wait_for_port
from sscjak.shared.secure_aggregation import self_mask, self_mask_commitment
from sscjak.shared.summary_layout import SummaryLayout

pytestmark = pytest.mark.integration

NODE = [sys.executable, "-m", "sscjak.node.cli"]
COORDINATOR = [sys.executable, "-m", "sscjak.coordinator.cli"]

#: The question, the differencing twin (one patient more), and a high minimum cell.
PLAN_A = Plan(title="mRSS and TJC at 12 months", outcomes=("mrss", "tjc"), months=(12,))
PLAN_B = Plan(
    title="mRSS and TJC at 12 months, wider window",
    outcomes=("mrss", "tjc"),
    months=(12,),
    window_months=2.5,
)
PLAN_SMALL_CELLS = Plan(
    title="mRSS and TJC at 12 months, min cell 20",
    outcomes=("mrss", "tjc"),
    months=(12,),
    min_cell=20,
)
STATISTIC_KEYS = {"n", "mean_change", "sd_change", "median_change", "smc", "V", "p_value"}


def run_command(command: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def check(command: list[str], timeout: float = 180) -> str:
    done = run_command(command, timeout)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


class RecordingProxy:
    """A TLS-terminating TCP proxy on 127.0.0.1 that keeps every plaintext byte, per
    connection and direction.

    It answers the nodes with the SuperLink's own certificate (issued by the study CA the
    nodes pin) and connects on to the SuperLink over TLS, so the federation runs exactly
    as deployed (TLS, node authentication by signed requests) while the proxy sees what
    the TLS layer carries: every byte a node sends, in the clear.
    """

    def __init__(
        self, target_port: int, certificate: Path, key: Path, ca: Path, avoid: set[bytes]
    ) -> None:
        self.target_port = target_port
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(certificate, key)
        self._client_tls = ssl.create_default_context(cafile=str(ca))
        self.port = free_port()
        # The nodes send the proxy's port as text (the HTTP Host header): never one that
        # reads as a pattern of the centres' data (port 44015 and the Excel serial day
        # 44015 are the same text), or the scan would find the port.
        while str(self.port).encode() in avoid:
            self.port = free_port()
        self.sent_by_nodes: dict[int, bytearray] = {}
        self.received_by_nodes: dict[int, bytearray] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RecordingProxy:
        self._thread.start()
        assert self._ready.wait(10), "the recording proxy did not start"
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port, ssl=self._server_tls)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _connection(self, reader, writer) -> None:
        number = next(self._ids)
        with self._lock:
            sent = self.sent_by_nodes.setdefault(number, bytearray())
            received = self.received_by_nodes.setdefault(number, bytearray())
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port, ssl=self._client_tls
            )
        except OSError:
            writer.close()
            return

        async def pump(source, sink, record: bytearray) -> None:
            try:
                while data := await source.read(65536):
                    with self._lock:
                        record.extend(data)
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(
            pump(reader, upstream_writer, sent), pump(upstream_reader, writer, received)
        )

    def node_streams(self) -> list[bytes]:
        with self._lock:
            return [bytes(b) for b in self.sent_by_nodes.values()]

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class DatabaseWatcher:
    """Keeps every version of the SuperLink's database files (``--database`` and its
    WAL) seen while the federation runs, so messages Flower deletes after delivery are
    inspected too. Stored as distinct overlapping 4 KiB pieces (SQLite's page size, plus
    :data:`OVERLAP` bytes of the next page so no pattern is cut at a piece's end)."""

    OVERLAP = 128
    PAGE = 4096

    def __init__(self, database: Path, interval: float = 0.5) -> None:
        self.database = database
        self.interval = interval
        self.pieces: dict[str, bytes] = {}
        self.copies = 0
        self.bytes_read = 0
        self._seen: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DatabaseWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.take()
            self._stop.wait(self.interval)

    def take(self) -> None:
        for path in sorted(self.database.parent.glob(self.database.name + "*")):
            try:
                stat = path.stat()
                if self._seen.get(path) == (stat.st_size, stat.st_mtime_ns):
                    continue
                data = path.read_bytes()
                self._seen[path] = (stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue
            self.copies += 1
            self.bytes_read += len(data)
            for start in range(0, len(data), self.PAGE):
                piece = data[start : start + self.PAGE + self.OVERLAP]
                self.pieces.setdefault(hashlib.sha256(piece).hexdigest(), piece)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.take()

    def stored_values(self) -> list[bytes]:
        """Every text and blob value of every table, read through SQLite."""
        values: list[bytes] = []
        with contextlib.closing(sqlite3.connect(self.database)) as connection:
            tables = [
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                for row in connection.execute(f'SELECT * FROM "{table}"'):
                    for value in row:
                        if isinstance(value, bytes):
                            values.append(value)
                        elif isinstance(value, str):
                            values.append(value.encode())
        return values


class CommandFederation:
    """Three centres and a coordinator set up and run with the documented commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.centres = write_disclosure_centres(root / "data")
        self.home = root / "coordinator"
        self.roster = root / "roster.toml"
        self.processes = ProcessGroup(root / "logs")
        self.nodes: dict[str, object] = {}
        self.proxy: RecordingProxy | None = None
        self.database: DatabaseWatcher | None = None
        self.plans: dict[str, Path] = {}
        for key, plan in {"A": PLAN_A, "B": PLAN_B, "small": PLAN_SMALL_CELLS}.items():
            path = root / f"plan_{key}.toml"
            path.write_text(plan.canonical_toml, encoding="utf-8")
            self.plans[key] = path

    def state(self, name: str) -> Path:
        return self.root / "centres" / name

    def audit(self, name: str) -> list[dict]:
        text = (self.state(name) / "audit.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def approve(self, name: str, plan: str, *extra: str) -> subprocess.CompletedProcess:
        return run_command(
            [
                *NODE,
                *("approve", str(self.plans[plan]), "--roster", str(self.roster)),
                *("--state", str(self.state(name)), *extra),
            ]
        )

    def start(self) -> None:
        check([*COORDINATOR, "certs", str(self.home / "certs"), "--host", "127.0.0.1"])
        for name in CENTRE_NAMES:
            state = self.state(name)
            check([*NODE, "keys", "--state", str(state), "--name", name])
            check([*NODE, "flower-key", "--state", str(state)])
            check([*NODE, "keys", "--state", str(state), "--out", str(state / "entry.toml")])
            check(
                [
                    *COORDINATOR,
                    *("roster", "add", "--roster", str(self.roster)),
                    *("--entry", str(state / "entry.toml")),
                ]
            )
        for name in CENTRE_NAMES:
            done = self.approve(name, "A", "--yes")
            assert done.returncode == 0, done.stdout + done.stderr
            assert "WARNING" not in done.stdout  # the first plan overlaps nothing
        fleet_port, control_port = free_port(), free_port()
        link = self.processes.start(
            "coordinator-serve",
            [
                *COORDINATOR,
                *("serve", "--home", str(self.home), "--roster", str(self.roster)),
                *("--fleet-address", f"127.0.0.1:{fleet_port}"),
                *("--control-port", str(control_port)),
            ],
        )
        deadline = time.monotonic() + 120
        while "SuperLink running" not in link.log_tail() and time.monotonic() < deadline:
            assert link.process.poll() is None, link.log_tail()
            time.sleep(0.3)
        assert "registered 3 node key(s)" in link.log_tail()
        wait_for_port("127.0.0.1", fleet_port, 10)
        self.database = DatabaseWatcher(self.home / "superlink.sqlite").start()
        certs = self.home / "certs"
        needles = {pattern.needle for pattern in all_patterns(self)}
        self.proxy = RecordingProxy(
            fleet_port, certs / "server.pem", certs / "server.key", certs / "ca.pem", needles
        ).start()
        for name, folder in self.centres.folders.items():
            self.nodes[name] = self.processes.start(
                f"node-{name}",
                [
                    *NODE,
                    *("serve", "--state", str(self.state(name)), "--data", str(folder)),
                    *("--superlink", f"127.0.0.1:{self.proxy.port}"),
                    *("--root-certificates", str(certs / "ca.pem")),
                ],
            )

    def run(self, plan: str, out: Path, timeout: float = 30) -> subprocess.CompletedProcess:
        return run_command(
            [
                *COORDINATOR,
                *("run", "--home", str(self.home), "--roster", str(self.roster)),
                *("--plan", str(self.plans[plan]), "--out", str(out)),
                *("--timeout", str(timeout), "--wait-for-nodes", "60"),
            ],
            timeout=400,
        )

    def close(self) -> None:
        self.processes.stop_all()
        if self.proxy is not None:
            self.proxy.stop()
        if self.database is not None:
            self.database.stop()


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    federation = CommandFederation(tmp_path_factory.mktemp("disclosure"))
    try:
        federation.start()
        yield federation
    finally:
        federation.close()
        print(federation.processes.logs())
        leftovers = [s.name for s in federation.processes.started if s.process.poll() is None]
        assert leftovers == [], f"processes still running after teardown: {leftovers}"


def plain_summaries(federation: CommandFederation, plan: Plan) -> dict[str, np.ndarray]:
    return {n: summarise_centre(f, plan) for n, f in federation.centres.folders.items()}


def all_patterns(federation: CommandFederation) -> list:
    patterns = []
    for folder in federation.centres.folders.values():
        patterns += leak_patterns(folder)
    return patterns


def masked_vectors_in(stream: bytes, length_bytes: int) -> list[np.ndarray]:
    """Every ``length_bytes``-long protobuf ``bytes`` value in ``stream`` (found by its
    varint length prefix): the candidates for a node's masked vector."""
    prefix = bytearray()
    value = length_bytes
    while True:
        byte, value = value & 0x7F, value >> 7
        prefix.append(byte | (0x80 if value else 0))
        if not value:
            break
    found, start = [], 0
    while (at := stream.find(bytes(prefix), start)) != -1:
        body = stream[at + len(prefix) : at + len(prefix) + length_bytes]
        if len(body) == length_bytes:
            found.append(np.frombuffer(body, dtype="<u8"))
        start = at + 1
    return found


def test_no_byte_a_node_sends_holds_a_patient_id_date_or_measurement(federation, tmp_path):
    # Before any analysis the nodes have only registered and sent heartbeats: what the
    # scan finds there is Flower's own framing (e.g. a heartbeat interval of 30.0 s as a
    # float64, which equals an mRSS of 30 as float64), not data; those few patterns are
    # set aside, and named.
    deadline = time.monotonic() + 60
    while len([s for s in federation.proxy.node_streams() if s]) < 3:
        assert time.monotonic() < deadline, "the nodes never connected through the proxy"
        time.sleep(0.5)
    time.sleep(2.0)
    patterns = all_patterns(federation)
    before = scan(federation.proxy.node_streams(), patterns)
    framing = {p.needle for p, _ in before.hits}
    assert before.kinds_hit() <= {"measurement"}, before.hits  # never an id or a date
    out = tmp_path / "results_A.json"
    started = time.monotonic()
    done = federation.run("A", out)
    assert done.returncode == 0, done.stdout + done.stderr
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # let the last heartbeats through the proxy
    streams = federation.proxy.node_streams()
    print(
        f"set aside as Flower framing (found before any analysis): "
        f"{[(p.encoding, p.needle.hex()) for p, _ in before.hits]}"
    )
    patterns = [p for p in patterns if p.needle not in framing]
    report = scan(streams, patterns)
    kinds = {
        k: sum(1 for p in patterns if p.kind == k) for k in ("patient_id", "date", "measurement")
    }
    print(
        f"plaintext capture: {report.bytes_scanned} bytes sent by 3 nodes over "
        f"{len(streams)} connections, {report.patterns} patterns {kinds}, "
        f"{len(report.hits)} hits; chance hits expected in random bytes "
        f"{report.expected_chance_hits:.2g}; analysis {elapsed:.1f} s"
    )
    assert report.hits == [], list(zip(report.hits, report.contexts, strict=True))
    assert report.expected_chance_hits < 0.01  # a hit would mean a leak, not chance

    # Positive control 1: the capture is readable plain text and holds the replies. The
    # nonce each node answered (its audit log) is in the bytes it sent, and the masked
    # vectors found in the capture, less the self-masks of the seeds revealed in it (each
    # seed found by the commitment sent with its vector), add up to the plain sum.
    plain = plain_summaries(federation, PLAN_A)
    layout = SummaryLayout.for_plan(PLAN_A)
    everything = b"".join(streams)
    candidates: dict[str, list[np.ndarray]] = {}
    for name in CENTRE_NAMES:
        reply = [e for e in federation.audit(name) if e["event"] == "analysis-reply"][-1]
        assert reply["nonce"].encode() in everything
        # the masked summary and the seed may travel on different connections
        node_streams = [s for s in streams if reply["nonce"].encode() in s and name.encode() in s]
        candidates[name] = [
            vector
            for node_stream in node_streams
            for vector in masked_vectors_in(node_stream, 8 * layout.length)
        ]
        assert candidates[name], f"no masked vector of {name} found in the capture"
    seeds = {
        seed
        for seed in (v.tobytes() for v in masked_vectors_in(everything, 32))
        if self_mask_commitment(seed).encode() in everything
    }
    assert len(seeds) == len(CENTRE_NAMES), "the revealed seeds are not all in the capture"
    self_masks = np.zeros(layout.length, dtype=np.uint64)
    for seed in seeds:
        self_masks += self_mask(seed, layout.length)
    expected = sum(plain.values())
    combinations = itertools.product(*(candidates[n] for n in CENTRE_NAMES))
    masked = [
        c
        for c in combinations
        if np.array_equal(
            (np.sum(np.stack(c), axis=0, dtype=np.uint64) - self_masks).view(np.int64), expected
        )
    ]
    assert masked, "the masked vectors and seeds in the capture do not add up to the plain sum"
    for name in CENTRE_NAMES:  # and no node's vector travelled unmasked
        assert not any(np.array_equal(v.view(np.int64), plain[name]) for v in candidates[name])

    # Positive control 2: the same scan finds ids, dates and measurements in the CSV
    # files, and measurements in an unmasked summary (structured int64 data).
    raw = [p.read_bytes() for f in federation.centres.folders.values() for p in f.glob("*.csv")]
    raw_report = scan(raw, patterns)
    assert raw_report.kinds_hit() == {"patient_id", "date", "measurement"}
    unmasked_report = scan([v.tobytes() for v in plain.values()], patterns)
    assert "measurement" in unmasked_report.kinds_hit()
    print(
        f"positive controls: CSV files {raw_report.bytes_scanned} bytes, "
        f"{len(raw_report.hits)} patterns found; unmasked summaries "
        f"{unmasked_report.bytes_scanned} bytes, {len(unmasked_report.hits)} found"
    )

    # What the SuperLink stored (TLS ends at the SuperLink): every copy of its database
    # files taken while the analysis ran, and every value of every table now.
    watcher = federation.database
    watcher.take()
    stored = list(watcher.pieces.values()) + watcher.stored_values()
    started = time.monotonic()
    # SQLite pages are structured binary: small int64s and whole float64s occur in them
    # by construction, so those encodings are left out here (they were checked on the
    # wire above); every text, every id, every date as text and every dense binary
    # encoding (fractional values, nanoseconds, packed arrays) is looked for.
    dense = [p for p in patterns if not p.structured]
    stored_report = scan(stored, dense)
    # The database did hold the replies: a slice of each node's masked vector is in it.
    held = sum(
        1
        for vector in masked[0]
        if any(vector.tobytes()[k : k + 512] in blob for k in (1024, 40960) for blob in stored)
    )
    print(
        f"SuperLink database: {watcher.copies} file copies ({watcher.bytes_read} bytes read), "
        f"{stored_report.bytes_scanned} distinct bytes scanned (pages and the tables' "
        f"values) in {time.monotonic() - started:.1f} s, {len(dense)} patterns "
        f"({len(patterns) - len(dense)} structured-binary ones left out), "
        f"{len(stored_report.hits)} hits; masked vectors of {held}/3 nodes found in it"
    )
    assert held == 3
    assert stored_report.hits == [], list(
        zip(stored_report.hits, stored_report.contexts, strict=True)
    )


def test_small_cells_are_suppressed_end_to_end(federation, tmp_path):
    for name in CENTRE_NAMES:  # overlaps plan A (another minimum cell): needs --yes
        done = federation.approve(name, "small", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "WARNING: this plan overlaps" in done.stdout
    out = tmp_path / "results_small.json"
    done = federation.run("small", out)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    layout = SummaryLayout.for_plan(PLAN_SMALL_CELLS)
    pooled = sum(plain_summaries(federation, PLAN_SMALL_CELLS).values())
    cells = {(c["outcome"], c["months"]): c for c in results["changes"]}
    suppressed = 0
    for (outcome, months), cell in cells.items():
        n = int(layout.counts(pooled, f"change.{outcome}.{months}.sums")["n"])
        if n < PLAN_SMALL_CELLS.min_cell:
            suppressed += 1
            assert cell["suppressed"] is True
            assert not STATISTIC_KEYS & set(cell), cell
        else:
            assert cell["suppressed"] is False and cell["n"] == n
    assert suppressed == 1  # the 12-month joint count (n = 11) is hidden, mRSS is shown
    assert cells[("mrss", 12)]["suppressed"] is False


def test_differencing_plan_is_refused_until_approved_and_its_approval_warns(federation, tmp_path):
    out_b = tmp_path / "results_B.json"
    done = federation.run("B", out_b)
    assert done.returncode == 1
    assert "not approved by this centre" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out_b.exists()
    for name in CENTRE_NAMES:  # (d) the audit-log evidence of every refusal
        last = federation.audit(name)[-1]
        assert last["event"] == "refusal"
        assert last["plan_sha256"] == PLAN_B.sha256
        assert "not approved" in last["reason"]
        assert "released_summary" not in last

    # The steward is warned: no --yes, no terminal → not approved, warning shown.
    name = CENTRE_NAMES[0]
    done = federation.approve(name, "B")
    assert done.returncode == 1
    assert "WARNING: this plan overlaps" in done.stdout
    assert "could" in done.stdout and "isolate individual patients" in done.stdout
    assert PLAN_A.sha256[:12] in done.stdout
    assert "window +/- 2 months in the approved plan, +/- 2.5 months in this one" in done.stdout
    assert not (federation.state(name) / "approvals" / f"{PLAN_B.sha256}.json").exists()

    # With --yes every centre approves; the approval records the overlaps accepted.
    for name in CENTRE_NAMES:
        done = federation.approve(name, "B", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "WARNING: this plan overlaps" in done.stdout
        record = json.loads(
            (federation.state(name) / "approvals" / f"{PLAN_B.sha256}.json").read_text()
        )
        assert PLAN_A.sha256 in record["acknowledged_overlaps"]
    done = federation.run("B", out_b)
    assert done.returncode == 0, done.stdout + done.stderr

    # Why the warning: the two results differ by exactly one patient per cell, so
    # subtracting them gives that patient's change.
    out_a = tmp_path / "results_A.json"
    done = federation.run("A", out_a)
    assert done.returncode == 0, done.stdout + done.stderr
    a = {(c["outcome"], c["months"]): c for c in json.loads(out_a.read_text())["changes"]}
    b = {(c["outcome"], c["months"]): c for c in json.loads(out_b.read_text())["changes"]}
    assert a[("mrss", 12)]["n"] + 1 == b[("mrss", 12)]["n"]
    assert a[("tjc", 12)]["n"] + 1 == b[("tjc", 12)]["n"]
    edge_folder = federation.centres.folders[federation.centres.edge_centre]
    layout_a, layout_b = SummaryLayout.for_plan(PLAN_A), SummaryLayout.for_plan(PLAN_B)
    only_a, only_b = summarise_centre(edge_folder, PLAN_A), summarise_centre(edge_folder, PLAN_B)
    isolated = (
        layout_b.counts(only_b, "change.mrss.12.sums")["sum_change"]
        - layout_a.counts(only_a, "change.mrss.12.sums")["sum_change"]
    )
    from_results = round(
        b[("mrss", 12)]["mean_change"] * b[("mrss", 12)]["n"]
        - a[("mrss", 12)]["mean_change"] * a[("mrss", 12)]["n"]
    )
    assert from_results == isolated  # one patient's change, read off two pooled results


def test_two_nodes_online_never_yield_a_result(federation, tmp_path):
    victim = CENTRE_NAMES[-1]
    federation.processes.stop(federation.nodes[victim], hard=True)
    out = tmp_path / "results_two.json"
    done = federation.run("A", out, timeout=10)
    print(done.stdout[-2000:], done.stderr[-2000:])
    assert done.returncode == 1
    assert "at least 3" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
    for name in CENTRE_NAMES[:-1]:  # no survivor ever answered a set of two
        replies = [e for e in federation.audit(name) if e["event"] == "analysis-reply"]
        assert replies and all(len(e["participants"]) >= 3 for e in replies)
