"""Separate hosts for one machine: Linux network namespaces joined by a switch namespace.

A :class:`NetworkTopology` builds (as root) one namespace per host plus one holding a
bridge, and joins each host to the bridge with a veth pair. Every interface, address
and firewall rule lives inside namespaces it created — nothing is added to the
machine's own network namespace — and the addresses are private test addresses
(``10.231.0.0/24``) that exist only on those veths, so no packet leaves them::

    <prefix>-switch      bridge br0; port <role> per host
    <prefix>-<role>      lo + eth0 (10.231.0.x/24), its own loopback, ports, firewall

:meth:`NetworkTopology.drop_inbound` gives a host the firewall of a hospital node: an
nftables ``input`` chain with policy drop that accepts loopback traffic and replies to
connections the host opened itself (``ct state established,related``), and counts what
it drops. Tear-down deletes every namespace (:meth:`NetworkTopology.close`); processes
started inside them must be stopped first (by PID), or a namespace lives on until they
exit.

Run as a script, the module is the probe used inside a namespace
(``ip netns exec NS python network_namespaces.py connect HOST PORT``): it prints one
JSON object describing what happened, so a test can assert on outcomes measured from
inside another host.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The private test network between the veths of one topology.
SUBNET = "10.231.0"
PREFIX_LENGTH = 24
SWITCH_ROLE = "switch"
FIREWALL_TABLE = "sscjak_centre_firewall"
DROP_COUNTER = "dropped_inbound"
PROBE_SCRIPT = Path(__file__).resolve()

#: The centre firewall: nothing may open a connection into the host.
CENTRE_FIREWALL = f"""
table inet {FIREWALL_TABLE} {{
    counter {DROP_COUNTER} {{ }}
    chain inbound {{
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
        counter name "{DROP_COUNTER}" drop
    }}
}}
"""


class TopologyError(RuntimeError):
    """A step of building or inspecting the topology failed (with ip's/nft's message)."""


def run_command(argv: Sequence[str], timeout: float = 30, stdin: str | None = None) -> str:
    """Run ``argv``; its stdout, or :class:`TopologyError` with its stderr."""
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise TopologyError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def ip_in(namespace: str, *arguments: str) -> str:
    """``ip -n NAMESPACE …`` (an ``ip`` command applied inside the namespace)."""
    return run_command(["ip", "-n", namespace, *arguments])


def namespaces_unavailable(prefix: str) -> str | None:
    """Why network namespaces cannot be used here, found by really making one; None if they can.

    Tries what :meth:`NetworkTopology.build` needs: create a namespace, a veth pair and a
    bridge inside it, run a command in it (``ip netns exec`` remounts ``/sys``), then
    deletes it again.
    """
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    namespace = f"{prefix}-check"
    try:
        run_command(["ip", "netns", "add", namespace])
    except (TopologyError, OSError, subprocess.TimeoutExpired) as error:
        return f"the kernel refused a network namespace: {error}"
    try:
        ip_in(namespace, "link", "add", "name", "a", "type", "veth", "peer", "name", "b")
        ip_in(namespace, "link", "add", "name", "br0", "type", "bridge")
        run_command(["ip", "netns", "exec", namespace, "true"])
    except (TopologyError, subprocess.TimeoutExpired) as error:
        return f"the kernel refused veth/bridge devices or ip netns exec: {error}"
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)
    return None


@dataclass(frozen=True)
class Host:
    """One simulated machine: its role, namespace and address on the test network."""

    role: str
    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout)

    def probe(self, *arguments: str, timeout: float = 60) -> dict:
        """Run this module's probe inside the host; its JSON answer."""
        done = self.run([sys.executable, str(PROBE_SCRIPT), *arguments], timeout=timeout)
        if done.returncode != 0:
            raise TopologyError(f"probe {arguments} in {self.role} failed: {done.stderr}")
        return json.loads(done.stdout)

    def listening_sockets(self) -> list[str]:
        """Local ``address:port`` of every listening TCP socket in this host (``ss``)."""
        done = self.run(["ss", "-ltnH"], timeout=30)
        if done.returncode != 0:
            raise TopologyError(f"ss in {self.role} failed: {done.stderr}")
        return [line.split()[3] for line in done.stdout.splitlines() if line.strip()]


@dataclass
class NetworkTopology:
    """Hosts on one bridged test network; a context manager that always tears down."""

    prefix: str
    hosts: dict[str, Host] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-{SWITCH_ROLE}"

    def _add_namespace(self, namespace: str) -> None:
        run_command(["ip", "netns", "add", namespace])
        self.created.append(namespace)
        run_command(["ip", "-n", namespace, "link", "set", "lo", "up"])

    def build(self, roles: dict[str, int]) -> dict[str, Host]:
        """Create the switch and one host per ``role → last address octet``."""
        self._add_namespace(self.switch)
        run_command(["ip", "-n", self.switch, "link", "add", "name", "br0", "type", "bridge"])
        run_command(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        for role, octet in roles.items():
            host = Host(role, f"{self.prefix}-{role}", f"{SUBNET}.{octet}")
            self._add_namespace(host.namespace)
            # Both ends are created inside namespaces: nothing appears on the machine.
            veth = ("type", "veth", "peer", "name", "eth0", "netns", host.namespace)
            ip_in(self.switch, "link", "add", "name", role, *veth)
            run_command(["ip", "-n", self.switch, "link", "set", role, "master", "br0", "up"])
            ip_in(host.namespace, "addr", "add", f"{host.address}/{PREFIX_LENGTH}", "dev", "eth0")
            run_command(["ip", "-n", host.namespace, "link", "set", "eth0", "up"])
            self.hosts[role] = host
        return self.hosts

    def drop_inbound(self, host: Host) -> None:
        """Give ``host`` a centre's firewall (module docstring)."""
        if shutil.which("nft") is None:
            raise TopologyError("nft (nftables) is not installed: apt-get install nftables")
        run_command(host.command(["nft", "-f", "-"]), stdin=CENTRE_FIREWALL)

    def dropped_packets(self, host: Host) -> int:
        """Packets ``host``'s firewall has dropped so far."""
        text = run_command(
            host.command(["nft", "-j", "list", "counter", "inet", FIREWALL_TABLE, DROP_COUNTER])
        )
        for item in json.loads(text)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise TopologyError(f"no counter {DROP_COUNTER} in {host.role}: {text}")

    def close(self) -> list[str]:
        """Delete every namespace created (hosts first, the switch last); errors, if any."""
        errors = []
        for namespace in reversed(self.created):
            done = subprocess.run(
                ["ip", "netns", "delete", namespace], capture_output=True, text=True, timeout=30
            )
            if done.returncode != 0:
                errors.append(f"{namespace}: {done.stderr.strip()}")
        self.created.clear()
        return errors

    def __enter__(self) -> NetworkTopology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- the probe, run inside a namespace ---------------------------------------------------


def probe_connect(host: str, port: int, timeout: float) -> dict:
    """Open a TCP connection: ``connected``, ``refused``, ``timeout`` or ``unreachable``."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            outcome = "connected"
    except ConnectionRefusedError:
        outcome = "refused"
    except TimeoutError:
        outcome = "timeout"
    except OSError as error:
        outcome = f"unreachable ({error.strerror})"
    return {"outcome": outcome, "seconds": round(time.monotonic() - started, 3)}


def probe_plaintext(host: str, port: int, timeout: float) -> dict:
    """Send a plain-text HTTP request; what came back (a TLS server answers no HTTP)."""
    request = (
        f"POST /v1/fleet/get-run HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()
    reply = b""
    outcome = "closed"
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(request)
        try:
            while chunk := connection.recv(4096):
                reply += chunk
        except ConnectionResetError:
            outcome = "reset"
        except TimeoutError:
            outcome = "timeout"
    return {
        "outcome": outcome,
        "request_bytes": len(request),
        "reply_bytes": len(reply),
        "http_reply": reply.startswith(b"HTTP/"),
        "reply_head_hex": reply[:16].hex(),
    }


def probe_https(host: str, port: int, ca_file: str, paths: Sequence[str]) -> dict:
    """TLS handshake pinned to ``ca_file``, then POST each path; status per path."""
    context = ssl.create_default_context(cafile=ca_file)
    started = time.monotonic()
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        version = tls.version()
    handshake = round(time.monotonic() - started, 3)
    import httpx  # a Flower dependency

    statuses = {}
    with httpx.Client(verify=context, timeout=10) as client:
        for path in paths:
            statuses[path] = client.post(f"https://{host}:{port}{path}").status_code
    return {"tls_version": version, "handshake_seconds": handshake, "statuses": statuses}


def probe_listen(host: str, port: int) -> None:
    """Listen on ``host:port``; print one line per accepted connection (forever)."""
    listener = socket.create_server((host, port))
    print(json.dumps({"listening": f"{host}:{port}"}), flush=True)
    while True:
        connection, peer = listener.accept()
        print(json.dumps({"accepted_from": peer[0]}), flush=True)
        connection.close()


def main(argv: Sequence[str]) -> int:
    action, host, port, *rest = argv
    if action == "listen":
        probe_listen(host, int(port))
        return 0
    if action == "connect":
        answer = probe_connect(host, int(port), float(rest[0]) if rest else 5.0)
    elif action == "plaintext":
        answer = probe_plaintext(host, int(port), float(rest[0]) if rest else 10.0)
    elif action == "https":
        answer = probe_https(host, int(port), rest[0], rest[1:])
    else:
        raise SystemExit(f"unknown probe {action!r}")
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
