"""A real federation on 127.0.0.1: SuperLink + 4 ``sscjak-node serve`` processes.

TLS and node authentication are on, every centre set up through its own commands
(keys, flower-key, approve). One federation for the whole module (setting it up costs
about half a minute on 2 cores); the tests run in file order because the first results
pin the nodes' release epoch to the whole set, and a later test kills a node.
Every process is stopped by PID at teardown; the processes' logs are printed then, so
a failing test shows them.
"""

from __future__ import annotations

import json
import secrets
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from flower_test_apps import run_app_and_read, write_app_pyproject
from ports import free_port

from sscjak.coordinator.federation.deployment import start_superlink
from sscjak.coordinator.federation.errors import FederationError
from sscjak.coordinator.federation.loopback import LoopbackFederation
from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.node.guard.release_epoch import new_epoch, write_epoch
from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.plan import Plan, default_plan, parse_plan
from sscjak.shared.process_control import ProcessGroup, wait_for_port
from sscjak.shared.roster import Roster, RosterMember, load_roster, write_roster
from sscjak.shared.secure_aggregation import remove_self_masks

pytestmark = pytest.mark.integration

#: Keys that describe how the result was obtained, not what it is.
PROVENANCE_KEYS = {"participants", "attempts", "excluded_nodes", "software", "created"}


def plain_sum_results(folders: list[Path], plan: Plan | None = None) -> dict:
    """The results of a plain (unmasked) sum of the centres' summaries: the reference."""
    plan = plan or default_plan()
    pooled = sum(summarise_centre(folder, plan) for folder in folders)
    results = build_results(np.asarray(pooled, dtype=np.int64), plan, len(folders))
    return json.loads(json.dumps(results, default=float))


def comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in PROVENANCE_KEYS}


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("federation")
    federation = LoopbackFederation(root, demo_centre_folders())
    try:
        federation.start(progress=lambda line: print(line, flush=True))
        yield federation
    finally:
        federation.close()
        print(federation.processes.logs())
        leftovers = [s.name for s in federation.processes.started if s.process.poll() is None]
        assert leftovers == [], f"processes still running after teardown: {leftovers}"


def audit_entries(federation: LoopbackFederation, name: str) -> list[dict]:
    path = federation.state_dir(name) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_secure_analysis_equals_the_plain_sum_exactly(federation, tmp_path):
    events: list[dict] = []
    started = time.monotonic()
    done = federation.analyse(tmp_path / "results.json", on_event=events.append, run_name="a")
    elapsed = time.monotonic() - started
    results = json.loads((tmp_path / "results.json").read_text())
    reference = plain_sum_results(list(federation.centres.values()))
    assert comparable(results) == comparable(reference)
    assert results["participants"] == sorted(federation.centres)
    assert results["attempts"] == 1 and done["attempts"] == 1
    replies = [e for e in events if e["event"] == "reply"]
    # two exchanges: the masked summaries, then the seeds
    assert [e["answered"] for e in replies] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert all(e["expected"] == 4 for e in replies)
    print(f"one secure analysis over 4 nodes: {elapsed:.1f} s (submit to results)")
    # every node logged what it released, for this participant set
    for name in federation.centres:
        answer, reveal = audit_entries(federation, name)[-2:]
        assert answer["event"] == "analysis-reply" and reveal["event"] == "self-mask-revealed"
        assert answer["participants"] == reveal["participants"] == sorted(federation.centres)


def test_a_planted_app_bundle_never_runs_on_a_node(federation, tmp_path):
    """A run pushed straight to the SuperLink's control API with its own ClientApp: the
    nodes answer with their installed code (a refusal), the bundle's code never runs."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    replies_file = tmp_path / "replies.json"
    app_dir = tmp_path / "evil_app"
    app_dir.mkdir()
    write_app_pyproject(
        app_dir,
        name="evil",
        description="planted bundle",
        publisher="mallory",
        serverapp="evil_server:app",
        clientapp="evil_client:app",
        config={"replies": str(replies_file)},
    )
    (app_dir / "evil_client.py").write_text(
        textwrap.dedent(
            f"""
            import os, pathlib
            home = os.environ.get("FLWR_HOME", "none").replace("/", "_")
            pathlib.Path({str(marker_dir)!r}, "imported-" + home).write_text("pwned")
            from flwr.app import ConfigRecord, Message, RecordDict
            from flwr.clientapp import ClientApp
            app = ClientApp()

            @app.query()
            def steal(message, context):
                pathlib.Path({str(marker_dir)!r}, "ran-" + home).write_text("pwned")
                return Message(RecordDict({{"sscjak": ConfigRecord({{"stolen": "rows"}})}}),
                               reply_to=message)
            """
        )
    )
    (app_dir / "evil_server.py").write_text(
        textwrap.dedent(
            """
            import json
            from flwr.app import ConfigRecord, Message, RecordDict
            from flwr.serverapp import ServerApp
            app = ServerApp()

            @app.main()
            def main(grid, context):
                nodes = [n.node_id for n in grid.get_nodes()]
                messages = [
                    Message(RecordDict({"sscjak": ConfigRecord({"give": "rows"})}),
                            dst_node_id=n, message_type=kind)
                    for n in nodes for kind in ("query", "train")
                ]
                replies = list(grid.send_and_receive(messages, timeout=60))
                out = []
                for reply in replies:
                    if reply.has_error():
                        out.append({"error": str(reply.error.reason)})
                    else:
                        out.append({k: v for k, v in reply.content["sscjak"].items()
                                    if isinstance(v, (str, int))})
                with open(context.run_config["replies"], "w") as handle:
                    json.dump({"nodes": len(nodes), "replies": out}, handle)
            """
        )
    )
    outcome = run_app_and_read(federation.settings, app_dir, replies_file, 120, "planted")
    assert outcome["nodes"] == 4
    assert len(outcome["replies"]) == 8  # every node answered both messages...
    for reply in outcome["replies"]:  # ...with its own code: a logged refusal
        assert reply.get("kind") == "sscjak.refusal/1", reply
        assert "malformed request" in reply["reason"]
        assert "stolen" not in reply
    node_markers = [p.name for p in marker_dir.iterdir() if "nodes" in p.name]
    assert node_markers == []
    assert not any(p.name.startswith("ran-") for p in marker_dir.iterdir())
    for name in federation.centres:
        assert audit_entries(federation, name)[-1].get("reason", "").startswith("malformed")


def test_an_unapproved_plan_is_refused_by_every_node(federation, tmp_path):
    text = default_plan().canonical_toml.replace("min_cell = 5", "min_cell = 6")
    plan = parse_plan(text, "test plan")
    plan_file = tmp_path / "other_plan.toml"
    plan_file.write_text(plan.canonical_toml)
    with pytest.raises(FederationError, match="not approved by this centre"):
        federation.analyse(tmp_path / "r.json", plan_file=plan_file, run_name="unapproved")
    assert not (tmp_path / "r.json").exists()
    for name in federation.centres:
        last = audit_entries(federation, name)[-1]
        assert "not approved" in last["reason"]


def test_a_changed_roster_is_refused_by_every_node(federation, tmp_path):
    roster = load_roster(federation.roster_file)
    victim = roster.members[0]
    swapped = RosterMember(victim.name, secrets.token_hex(32), victim.flower_auth_public_key)
    changed = Roster((*roster.members[1:], swapped))
    changed_file = tmp_path / "changed_roster.toml"
    write_roster(changed, changed_file)
    with pytest.raises(FederationError, match="roster changed"):
        federation.analyse(tmp_path / "r.json", roster_file=changed_file, run_name="roster")
    for name in federation.centres:
        assert "roster changed" in audit_entries(federation, name)[-1]["reason"]


def test_masked_vectors_through_flower_differ_between_rounds_and_look_uniform(federation, tmp_path):
    """A recording ServerApp (a bundle of the test's own) sends two well-formed rounds of
    an approved plan and keeps what the coordinator receives: the masked vectors."""
    text = default_plan().canonical_toml.replace("min_cell = 5", "min_cell = 7")
    plan = parse_plan(text, "masking plan")
    plan_file = tmp_path / "masking_plan.toml"
    plan_file.write_text(plan.canonical_toml)
    federation.approve_all(load_roster(federation.roster_file), plan_file=plan_file)
    recorded = tmp_path / "masked.json"
    app_dir = tmp_path / "recorder"
    app_dir.mkdir()
    write_app_pyproject(
        app_dir,
        name="recorder",
        description="records masked replies",
        publisher="sscjak-tests",
        serverapp="recorder:app",
        clientapp="recorder:unused",
        config={
            "out": str(recorded),
            "plan": str(plan_file),
            "roster": str(federation.roster_file),
        },
    )
    (app_dir / "recorder.py").write_text(
        textwrap.dedent(
            """
            import json, secrets
            from pathlib import Path
            from flwr.clientapp import ClientApp
            from flwr.serverapp import ServerApp
            from sscjak.coordinator.federation.server_app import FlowerTransport, wait_for_nodes
            from sscjak.shared.plan import load_plan
            from sscjak.shared.protocol import (
                AnalysisRequest, UnmaskRequest, encode_request, encode_unmask_request)
            from sscjak.shared.roster import load_roster

            app = ServerApp()
            unused = ClientApp()

            @app.main()
            def main(grid, context):
                plan = load_plan(Path(context.run_config["plan"]))
                roster = load_roster(Path(context.run_config["roster"]))
                transport = FlowerTransport(grid, roster)
                wait_for_nodes(transport, len(roster), 60)
                rounds = []
                for attempt in (1, 2):
                    request = encode_request(AnalysisRequest(
                        plan_sha256=plan.sha256, plan_toml=plan.canonical_toml,
                        roster_sha256=roster.sha256, participants=tuple(roster.names),
                        nonce=secrets.token_hex(32), attempt=attempt))
                    replies = transport.exchange({n: dict(request) for n in roster.names}, 60)
                    unmask = encode_unmask_request(UnmaskRequest(
                        plan_sha256=plan.sha256, roster_sha256=roster.sha256,
                        nonce=request["nonce"], participants=tuple(roster.names)))
                    seeds = transport.exchange({n: dict(unmask) for n in roster.names}, 60)
                    rounds.append({
                        n: [r.get("masked", b"").hex(),
                            seeds.get(n, {}).get("self_mask_seed", b"").hex()]
                        for n, r in replies.items()})
                Path(context.run_config["out"]).write_text(json.dumps(rounds))
            """
        )
    )
    rounds = run_app_and_read(federation.settings, app_dir, recorded, 180, "recording")
    names = sorted(federation.centres)
    assert [sorted(r) for r in rounds] == [names, names]
    masked = [
        {n: np.frombuffer(bytes.fromhex(r[n][0]), dtype="<u8") for n in names} for r in rounds
    ]
    seeds = [[bytes.fromhex(r[n][1]) for n in names] for r in rounds]
    plain = {n: summarise_centre(federation.centres[n], plan) for n in names}
    for one_round, round_seeds in zip(masked, seeds, strict=True):
        total = np.zeros_like(one_round[names[0]])
        for name in names:
            total += one_round[name]  # uint64: wraps mod 2**64
        assert not np.array_equal(total.view(np.int64), sum(plain.values()))  # self-masked
        unmasked = remove_self_masks(total, round_seeds)
        assert np.array_equal(unmasked, sum(plain.values()))
    for name in names:
        first, second = masked[0][name], masked[1][name]
        assert np.mean(first == second) < 1e-3  # fresh masks every round
        assert not np.any(first == plain[name].view(np.uint64))  # nothing leaks as is
        bits = np.unpackbits(first.view(np.uint8))
        # 2.3 million bits of a uniform vector: mean 0.5 within 6 standard errors
        assert abs(bits.mean() - 0.5) < 6 * 0.5 / np.sqrt(bits.size)


def test_a_node_killed_mid_analysis_leaves_the_survivors_result(federation, tmp_path):
    victim = sorted(federation.centres)[1]
    # The earlier analyses pinned every node's release epoch to the four centres; a
    # result over the survivors needs the stewards' new epoch first.
    for name in federation.centres:
        write_epoch(federation.state_dir(name) / "ledger", new_epoch("steward"))
    # Frozen first, so it is still "online" for Flower when the analysis starts but
    # cannot answer; killed as soon as the analysis has started.
    federation.pause_node(victim)
    events: list[dict] = []

    def on_event(event: dict) -> None:
        events.append(event)
        if event["event"] == "nodes":
            federation.stop_node(victim, hard=True)

    federation.analyse(
        tmp_path / "results.json",
        on_event=on_event,
        round_settings=RoundSettings(timeout=15.0, wait_for_nodes=60.0),
        run_name="killed",
    )
    assert events[0]["event"] == "nodes" and victim in events[0]["online"]
    results = json.loads((tmp_path / "results.json").read_text())
    survivors = sorted(n for n in federation.centres if n != victim)
    assert results["participants"] == survivors
    assert results["attempts"] == 2
    assert results["excluded_nodes"] == {victim: "did not answer"}
    reference = plain_sum_results([federation.centres[n] for n in survivors])
    assert comparable(results) == comparable(reference)
    attempts = [e for e in events if e["event"] == "attempt"]
    assert [(a["answered"], a["expected"]) for a in attempts] == [(3, 4), (3, 3), (3, 3)]
    assert "seeds revealed" in attempts[-1]["summary"]


def test_nodes_survive_a_superlink_restart_and_answer_again(federation, tmp_path):
    """--database keeps the SuperLink's state: after a restart the running nodes reconnect
    (they do not exit) and the next analysis works. Runs after the killed-node test, so
    only the survivors take part."""
    survivors = sorted(n for n, p in federation.nodes.items() if p.process.poll() is None)
    assert len(survivors) == 3
    text = default_plan().canonical_toml.replace("min_cell = 5", "min_cell = 8")
    plan = parse_plan(text, "restart plan")
    plan_file = tmp_path / "restart_plan.toml"
    plan_file.write_text(plan.canonical_toml)
    federation.approve_all(load_roster(federation.roster_file), survivors, plan_file=plan_file)
    # The killed node is still listed online (its heartbeat has not expired, and the
    # database keeps it across the restart), so the analysis first asks all four; the
    # survivors, pinned to their three, would refuse that set. Their stewards start a
    # new epoch: then the first attempt misses the dead node and the retry is the three.
    for name in survivors:
        write_epoch(federation.state_dir(name) / "ledger", new_epoch("steward"))
    federation.processes.stop(federation.superlink)
    time.sleep(2)
    federation.superlink = start_superlink(federation.processes, federation.settings)
    federation.analyse(
        tmp_path / "results.json",
        plan_file=plan_file,
        round_settings=RoundSettings(timeout=15.0, wait_for_nodes=20.0),
        run_name="restart",
    )
    assert all(federation.nodes[n].process.poll() is None for n in survivors)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["participants"] == survivors
    reference = plain_sum_results([federation.centres[n] for n in survivors], plan)
    assert comparable(results) == comparable(reference)


def test_fleet_address_serves_only_the_fleet_api(federation):
    import ssl

    import httpx

    ca = ssl.create_default_context(cafile=federation.settings.certificates.ca_certificate)
    fleet = f"https://{federation.settings.fleet_address}"
    control = f"https://{federation.settings.control_address}"
    assert httpx.post(f"{fleet}/v1/control/list-runs", verify=ca).status_code == 404
    assert httpx.post(f"{fleet}/v1/runtime/get-nodes", verify=ca).status_code == 404
    assert httpx.post(f"{fleet}/v1/fleet/get-run", verify=ca).status_code != 404
    assert httpx.post(f"{control}/v1/control/list-runs", verify=ca).status_code != 404
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):  # TLS only
        httpx.post(f"http://{federation.settings.fleet_address}/v1/fleet/get-run")


def test_process_group_stops_what_it_started(tmp_path):
    with ProcessGroup(tmp_path) as group:
        port = free_port()
        sleeper = group.start(
            "listener",
            [
                sys.executable,
                "-c",
                f"import socket,time;s=socket.socket();s.bind(('127.0.0.1',{port}));"
                "s.listen();time.sleep(600)",
            ],
        )
        wait_for_port("127.0.0.1", port, 30, sleeper.process)
    assert sleeper.process.poll() is not None
