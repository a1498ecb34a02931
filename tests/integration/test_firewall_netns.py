"""Behind a firewall, for real: one coordinator host and three centre hosts.

Each host is a Linux network namespace (``tests/support/network_namespaces.py``) on a
private test network 10.231.0.0/24 that exists only between the namespaces' veths::

    coordinator 10.231.0.1    sscjak-coordinator certs / roster add / serve / run
    centre1     10.231.0.11   sscjak-node keys / approve / serve   (centre_a)
    centre2     10.231.0.12   …                                    (centre_b)
    centre3     10.231.0.13   …                                    (centre_c)

Every centre host drops inbound connections (nftables ``input`` policy drop; loopback
and replies to its own outbound connections accepted); the coordinator host has no
firewall, so what keeps its Control API private here is only that it listens on the
namespace's own 127.0.0.1. The commands of docs/federation.md run inside the hosts
with ``ip netns exec``; files cross between hosts by copying, as e-mail would.
The SuperLink uses the documented default ports (9092 Fleet, 9093 Control): each
namespace has its own, empty, port space, so they cannot collide with anything else
running on the machine.

Shown: (a) the analysis completes and equals ``simulate`` on the same folders; (b) a
centre reaches the Fleet API (TLS pinned to the study CA) but not the Control API port;
(c) a plain-text request to the Fleet API gets no HTTP answer, and a node started with
``--insecure`` never connects; (d) the coordinator
cannot open a connection into a centre host, where a probe listener was reachable
before the firewall went up. Skipped, with the reason, only when namespaces cannot be
made (not root, no ``ip``, the kernel refuses). Every process is stopped by PID and
every namespace deleted, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from network_namespaces import (
    PROBE_SCRIPT,
    Host,
    NetworkTopology,
    namespaces_unavailable,
)

from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.shared.process_control import ProcessGroup, StartedProcess

pytestmark = pytest.mark.integration

NODE = [sys.executable, "-m", "sscjak.node.cli"]
COORDINATOR = [sys.executable, "-m", "sscjak.coordinator.cli"]
PROVENANCE_KEYS = {"participants", "attempts", "excluded_nodes", "software", "created"}
FLEET_PORT = 9092
CONTROL_PORT = 9093
PROBE_PORT = 8443
HOSTS = {"coordinator": 1, "centre1": 11, "centre2": 12, "centre3": 13}
CENTRES = ["centre1", "centre2", "centre3"]
#: How long a blocked connection attempt waits before it counts as dropped.
BLOCKED_TIMEOUT = 4.0


def check_in(host: Host, command: list[str], timeout: float = 120) -> str:
    """Run ``command`` inside ``host``; its stdout (fails the test with its output)."""
    done = host.run(command, timeout=timeout)
    assert done.returncode == 0, f"[{host.role}] {' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_for_line(started: StartedProcess, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in started.log_tail(20000):
        assert started.process.poll() is None, f"{started.name} exited:\n{started.log_tail()}"
        assert time.monotonic() < deadline, (
            f"no {text!r} from {started.name}:\n{started.log_tail()}"
        )
        time.sleep(0.3)


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address.startswith("[::1]")


@dataclass
class FirewalledFederation:
    """The running hosts, their processes, and the figures measured while setting up."""

    topology: NetworkTopology
    processes: ProcessGroup
    root: Path
    folders: dict[str, Path]
    probe_listener: StartedProcess
    figures: dict = field(default_factory=dict)

    def host(self, role: str) -> Host:
        return self.topology.hosts[role]

    @property
    def coordinator(self) -> Host:
        return self.host("coordinator")

    @property
    def ca_file(self) -> Path:
        return self.root / "centre1" / "ca.pem"


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    prefix = f"sscjak-{os.getpid()}"
    reason = namespaces_unavailable(prefix)
    if reason is not None:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("netns")
    folders = dict(zip(CENTRES, list(demo_centre_folders().values())[:3], strict=True))
    topology = NetworkTopology(prefix)
    processes = ProcessGroup(root / "logs")
    figures: dict = {}
    try:
        started = time.monotonic()
        hosts = topology.build(HOSTS)
        coordinator = hosts["coordinator"]
        figures["namespaces_seconds"] = round(time.monotonic() - started, 2)

        # A listener on centre1's address, reachable before the firewall goes up.
        centre1 = hosts["centre1"]
        probe_listener = processes.start(
            "probe-listener-centre1",
            centre1.command(
                [sys.executable, str(PROBE_SCRIPT), "listen", centre1.address, str(PROBE_PORT)]
            ),
        )
        wait_for_line(probe_listener, "listening", 30)
        before = coordinator.probe("connect", centre1.address, str(PROBE_PORT), "5")
        figures["probe_into_centre_before_firewall"] = before
        assert before["outcome"] == "connected", before

        started = time.monotonic()
        for role in CENTRES:
            topology.drop_inbound(hosts[role])
        figures["firewall_seconds"] = round(time.monotonic() - started, 2)

        # The commands of docs/federation.md, each on its host.
        started = time.monotonic()
        home = root / "coordinator"
        # 127.0.0.1 too: the coordinator's own Control API calls (node registration,
        # starting a run) verify the same certificate on the loopback Control API; with
        # only the public address, 'serve' cannot register the roster's nodes.
        names = ["--host", coordinator.address, "--host", "127.0.0.1"]
        check_in(coordinator, [*COORDINATOR, "certs", str(home / "certs"), *names])
        roster = home / "roster.toml"
        for role in CENTRES:
            state = root / role / "state"
            entry = root / role / "entry.toml"
            check_in(
                hosts[role],
                [*NODE, "keys", "--state", str(state), "--name", role, "--out", str(entry)],
            )
            received = home / f"entry-{role}.toml"  # "sent" to the coordinator
            shutil.copyfile(entry, received)
            check_in(
                coordinator,
                [*COORDINATOR, "roster", "add", "--roster", str(roster), "--entry", str(received)],
            )
        for role in CENTRES:  # the coordinator sends back the roster and the study CA
            shutil.copyfile(roster, root / role / "roster.toml")
            shutil.copyfile(home / "certs" / "ca.pem", root / role / "ca.pem")
            check_in(
                hosts[role],
                [
                    *NODE,
                    "approve",
                    "default",
                    "--roster",
                    str(root / role / "roster.toml"),
                    "--state",
                    str(root / role / "state"),
                    "--yes",
                ],
            )
        figures["certs_keys_roster_approvals_seconds"] = round(time.monotonic() - started, 2)

        started = time.monotonic()
        link = processes.start(
            "coordinator-serve",
            coordinator.command(
                [
                    *COORDINATOR,
                    "serve",
                    "--home",
                    str(home),
                    "--roster",
                    str(roster),
                    "--fleet-address",
                    f"{coordinator.address}:{FLEET_PORT}",
                    "--control-port",
                    str(CONTROL_PORT),
                ]
            ),
        )
        wait_for_line(link, "SuperLink running", 180)
        assert "registered 3 node key(s)" in link.log_tail(20000)
        figures["serve_seconds"] = round(time.monotonic() - started, 2)

        started = time.monotonic()
        for role in CENTRES:
            processes.start(
                f"node-{role}",
                hosts[role].command(
                    [
                        *NODE,
                        "serve",
                        "--state",
                        str(root / role / "state"),
                        "--data",
                        str(folders[role]),
                        "--superlink",
                        f"{coordinator.address}:{FLEET_PORT}",
                        "--root-certificates",
                        str(root / role / "ca.pem"),
                    ]
                ),
            )
        figures["nodes_start_seconds"] = round(time.monotonic() - started, 2)
        yield FirewalledFederation(topology, processes, root, folders, probe_listener, figures)
    finally:
        processes.stop_all()
        print(processes.logs())
        errors = topology.close()
        print("figures:", json.dumps(figures, indent=1))
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not errors, errors
        assert prefix + "-" not in left, left


def test_analysis_behind_firewalls_equals_simulate(federation):
    coordinator = federation.coordinator
    out = federation.root / "coordinator" / "results.json"
    started = time.monotonic()
    done = coordinator.run(
        [
            *COORDINATOR,
            "run",
            "--home",
            str(federation.root / "coordinator"),
            "--roster",
            str(federation.root / "coordinator" / "roster.toml"),
            "--out",
            str(out),
            "--timeout",
            "90",
            "--wait-for-nodes",
            "120",
        ],
        timeout=420,
    )
    federation.figures["analysis_seconds"] = round(time.monotonic() - started, 2)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{federation.processes.logs()}"
    assert "nodes answered 3/3" in done.stdout
    assert "attempt 1: 3/3 nodes answered" in done.stdout
    results = json.loads(out.read_text())
    assert results["nodes"] == 3

    simulated = federation.root / "simulated.json"
    reference = subprocess.run(
        [*COORDINATOR, "simulate", *map(str, federation.folders.values()), "--out", str(simulated)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reference.returncode == 0, reference.stderr
    expected = json.loads(simulated.read_text())
    comparable = {k: v for k, v in results.items() if k not in PROVENANCE_KEYS}
    assert comparable == {k: v for k, v in expected.items() if k not in PROVENANCE_KEYS}
    federation.figures["results_fields_compared"] = sorted(comparable)
    federation.figures["change_cells_compared"] = len(results["changes"])


def test_centre_reaches_the_fleet_api_but_not_the_control_api(federation):
    coordinator_address = federation.coordinator.address
    centre = federation.host("centre2")
    fleet = centre.probe("connect", coordinator_address, str(FLEET_PORT), "5")
    control = centre.probe("connect", coordinator_address, str(CONTROL_PORT), str(BLOCKED_TIMEOUT))
    # The centre's own loopback is another host's: nothing of the coordinator there either.
    own_loopback = centre.probe("connect", "127.0.0.1", str(CONTROL_PORT), str(BLOCKED_TIMEOUT))
    https = centre.probe(
        "https",
        coordinator_address,
        str(FLEET_PORT),
        str(federation.ca_file),
        "/v1/fleet/get-run",
        "/v1/control/list-runs",
        "/v1/runtime/get-nodes",
    )
    federation.figures.update(
        centre_to_fleet_port=fleet,
        centre_to_control_port=control,
        centre_to_own_loopback_control_port=own_loopback,
        centre_https_to_fleet=https,
    )
    assert fleet["outcome"] == "connected"
    assert control["outcome"] != "connected"
    assert own_loopback["outcome"] != "connected"
    assert https["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert https["statuses"]["/v1/fleet/get-run"] != 404
    assert https["statuses"]["/v1/control/list-runs"] == 404
    assert https["statuses"]["/v1/runtime/get-nodes"] == 404

    # What listens on the coordinator host beyond its loopback: the Fleet API only.
    public = [a for a in federation.coordinator.listening_sockets() if not is_loopback(a)]
    assert public == [f"{coordinator_address}:{FLEET_PORT}"]
    assert f"127.0.0.1:{CONTROL_PORT}" in federation.coordinator.listening_sockets()
    federation.figures["coordinator_non_loopback_listeners"] = public


def test_plain_text_to_the_fleet_api_gets_no_http_answer(federation):
    centre = federation.host("centre3")
    reply = centre.probe("plaintext", federation.coordinator.address, str(FLEET_PORT), "10")
    federation.figures["plain_text_request_to_fleet"] = reply
    assert reply["request_bytes"] > 0
    assert not reply["http_reply"], reply
    assert reply["outcome"] in ("closed", "reset"), reply


def test_coordinator_cannot_connect_into_a_centre(federation):
    coordinator = federation.coordinator
    centre1 = federation.host("centre1")
    accepted_before = federation.probe_listener.log_tail().count("accepted_from")
    dropped_before = federation.topology.dropped_packets(centre1)
    started = time.monotonic()
    # every centre: nothing of the node is reachable from outside; each listening port
    # is probed from the coordinator (all probes at once: each waits BLOCKED_TIMEOUT)
    targets = [(centre1, PROBE_PORT)]
    for role in CENTRES:
        centre = federation.host(role)
        listeners = centre.listening_sockets()
        exposed = [a for a in listeners if not is_loopback(a)]
        assert exposed == ([f"{centre.address}:{PROBE_PORT}"] if role == "centre1" else [])
        ports = sorted({int(a.rsplit(":", 1)[1]) for a in listeners})
        targets += [(centre, port) for port in ports]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        outcomes = list(
            pool.map(
                lambda target: coordinator.probe(
                    "connect", target[0].address, str(target[1]), str(BLOCKED_TIMEOUT)
                ),
                targets,
            )
        )
    into_listener, *into_ports = outcomes
    federation.figures["coordinator_to_centre_probe_listener"] = into_listener
    assert into_listener["outcome"] == "timeout", into_listener  # dropped, not refused
    for (centre, port), outcome in zip(targets[1:], into_ports, strict=True):
        federation.figures.setdefault("coordinator_to_centre_ports", []).append(
            {"centre": centre.role, "port": port, **outcome}
        )
        assert outcome["outcome"] == "timeout", (centre.role, port, outcome)
    federation.figures["coordinator_probe_seconds"] = round(time.monotonic() - started, 2)
    time.sleep(0.5)
    assert federation.probe_listener.log_tail().count("accepted_from") == accepted_before
    dropped = federation.topology.dropped_packets(centre1) - dropped_before
    federation.figures["centre1_packets_dropped_by_firewall"] = dropped
    assert dropped > 0


def test_a_supernode_without_tls_gets_no_connection(federation):
    """A node started with --insecure (plain HTTP) against the TLS SuperLink never connects."""
    centre = federation.host("centre3")
    state = federation.root / "centre3-plain" / "state"
    check_in(centre, [*NODE, "keys", "--state", str(state), "--name", "centre3-plain"])
    plain = federation.processes.start(
        "node-centre3-plain-text",
        centre.command(
            [
                *NODE,
                "serve",
                "--state",
                str(state),
                "--data",
                str(federation.folders["centre3"]),
                "--superlink",
                f"{federation.coordinator.address}:{FLEET_PORT}",
                "--insecure",
            ]
        ),
    )
    started = time.monotonic()
    failed = "Connection attempt failed"
    while plain.log_tail(20000).count(failed) < 3 and time.monotonic() - started < 60:
        assert plain.process.poll() is None, plain.log_tail()
        time.sleep(0.5)
    seconds = round(time.monotonic() - started, 2)
    federation.processes.stop(plain)
    log = plain.log_tail(20000)
    federation.figures["plain_text_supernode"] = {
        "failed_connection_attempts": log.count(failed),
        "seconds_watched": seconds,
        "got_a_node_id": "SuperNode ID" in log,
    }
    assert log.count(failed) >= 3, log
    assert "SuperNode ID" not in log, log
    # the same centre host, with TLS, is a connected node
    [with_tls] = [p for p in federation.processes.started if p.name == "node-centre3"]
    wait_for_line(with_tls, "SuperNode ID", 60)
