"""Malformed messages through a real SuperLink: each gets a refusal and an audit line.

A ServerApp of the test's own (a bundle pushed straight to the Control API, like the
planted-bundle test of test_federation_deployment.py) sends every crafted message of
``tests/support/malformed_messages.py`` — wrong shape or type, oversized, unknown plan,
wrong message type, garbage bytes — to three real ``sscjak-node serve`` processes, then a
replayed nonce. Every message must come back as a refusal naming the right reason, every
node must have logged one audit line per message, stay alive, and answer a normal
analysis afterwards with the exact plain sum.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import malformed_messages
import numpy as np
import pytest
from flower_test_apps import run_app_and_read, write_app_pyproject
from malformed_messages import REPLAY_REASON, UNKNOWN_PLAN_REASON, crafted_messages

from sscjak.coordinator.federation.loopback import LoopbackFederation
from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.plan import default_plan
from sscjak.shared.roster import load_roster

pytestmark = pytest.mark.integration

PROVENANCE_KEYS = {"participants", "attempts", "excluded_nodes", "software", "created"}
#: The crafted messages sent over the wire: every category, and every case whose point is
#: how it travels (records, message types, sizes). A node answers one message at a time
#: (~2 s each on 2 busy cores); the whole catalogue runs in-process in
#: tests/node/test_handler_malformed.py.
WIRE_CASES = (
    "no records",
    "two records",
    "record under another name",
    "missing nonce",
    "a reply sent to a node",
    "attempt as bool",
    "metric record instead of config record",
    "array record instead of config record",
    "every field garbage bytes",
    "plan text as garbage bytes",
    "plan text of 70 000 characters",
    "1 MiB extra field",
    "unknown plan",
    "train message",
    "query with an unknown action",
)

SERVER_APP = '''
import json, time
from pathlib import Path
from flwr.app import Message
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp
from malformed_messages import crafted_messages, replay_pair
from sscjak.coordinator.federation.server_app import FlowerTransport, wait_for_nodes
from sscjak.shared.flower_payload import message_content, payload_from_message
from sscjak.shared.plan import load_plan
from sscjak.shared.roster import load_roster

app = ServerApp()
unused = ClientApp()


def exchange(grid, messages, labels, timeout=150):
    """Push ``messages``; the answer to each (by label), as it came back."""
    ids = list(grid.push_messages(messages))
    label_of = dict(zip(ids, labels))
    answers, pending = {}, set(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for reply in grid.pull_messages(list(pending)):
            message_id = reply.metadata.reply_to_message_id
            pending.discard(message_id)
            if reply.has_error():
                answers[label_of[message_id]] = {"flower_error": str(reply.error.reason)}
            else:
                payload = payload_from_message(reply)
                answers[label_of[message_id]] = {
                    k: v for k, v in payload.items() if isinstance(v, (str, int))
                }
        time.sleep(0.2)
    return answers


@app.main()
def main(grid, context):
    config = context.run_config
    plan = load_plan(Path(config["plan"]))
    roster = load_roster(Path(config["roster"]))
    online = wait_for_nodes(FlowerTransport(grid, roster), len(roster), 60)
    started = time.monotonic()
    messages, labels = [], []
    for name, node_id in sorted(online.items()):
        for case in crafted_messages(
            node=name, participants=list(roster.names), roster_sha256=roster.sha256,
            approved_plan_toml=plan.canonical_toml,
        ):
            if case.name not in config["cases"].split("|"):
                continue
            messages.append(Message(case.content, dst_node_id=node_id,
                                    message_type=case.message_type))
            labels.append(f"{name}|{case.name}")
    answers = exchange(grid, messages, labels)
    crafted_seconds = time.monotonic() - started
    pairs = {name: replay_pair(participants=list(roster.names), roster_sha256=roster.sha256,
                               approved_plan_toml=plan.canonical_toml) for name in online}
    for step, label in ((0, "replay: first use of the nonce"), (1, "replay: nonce reused")):
        answers.update(exchange(
            grid,
            [Message(message_content(pairs[n][step]), dst_node_id=online[n],
                     message_type="query") for n in sorted(online)],
            [f"{n}|{label}" for n in sorted(online)],
        ))
    Path(config["out"]).write_text(json.dumps({
        "nodes": sorted(online), "answers": answers, "messages": len(messages),
        "crafted_seconds": crafted_seconds, "seconds": time.monotonic() - started,
    }))
'''


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("malformed")
    centres = dict(sorted(demo_centre_folders().items())[:3])
    federation = LoopbackFederation(root, centres)
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
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_crafting_app(federation: LoopbackFederation, directory: Path, out: Path) -> Path:
    plan_file = directory / "approved_plan.toml"
    plan_file.write_text(default_plan().canonical_toml)  # what every node approved
    app_dir = directory / "crafter"
    app_dir.mkdir()
    write_app_pyproject(
        app_dir,
        name="crafter",
        description="sends malformed messages to every node",
        publisher="sscjak-tests",
        serverapp="crafter:app",
        clientapp="crafter:unused",
        config={
            "out": str(out),
            "plan": str(plan_file),
            "roster": str(federation.roster_file),
            "cases": "|".join(WIRE_CASES),
        },
    )
    (app_dir / "crafter.py").write_text(SERVER_APP)
    shutil.copy(malformed_messages.__file__, app_dir / "malformed_messages.py")
    return app_dir


def test_every_malformed_message_is_refused_logged_and_survived(federation, tmp_path):
    names = sorted(federation.centres)
    roster = load_roster(federation.roster_file)
    plan = default_plan()
    before = {name: len(audit_entries(federation, name)) for name in names}
    out = tmp_path / "crafted.json"
    started = time.monotonic()
    app_dir = write_crafting_app(federation, tmp_path, out)
    outcome = run_app_and_read(federation.settings, app_dir, out, 200, "crafting")
    assert outcome["nodes"] == names
    answers = outcome["answers"]
    catalogue = crafted_messages(
        node=names[0],
        participants=list(roster.names),
        roster_sha256=roster.sha256,
        approved_plan_toml=plan.canonical_toml,
    )
    assert set(WIRE_CASES) <= {case.name for case in catalogue}
    assert {case.category for case in catalogue if case.name in WIRE_CASES} == {
        case.category for case in catalogue
    }, "every category goes over the wire"
    expected: dict[str, str] = {}
    for name in names:
        for case in crafted_messages(
            node=name,
            participants=list(roster.names),
            roster_sha256=roster.sha256,
            approved_plan_toml=plan.canonical_toml,
        ):
            if case.name in WIRE_CASES:
                expected[f"{name}|{case.name}"] = case.reason
        expected[f"{name}|replay: first use of the nonce"] = UNKNOWN_PLAN_REASON
        expected[f"{name}|replay: nonce reused"] = REPLAY_REASON
    assert sorted(answers) == sorted(expected), "some messages got no answer"
    for label, reason in expected.items():
        answer = answers[label]
        assert answer.get("kind") == "sscjak.refusal/1", (label, answer)
        assert answer["node"] == label.split("|")[0]
        assert reason in answer["reason"], (label, answer["reason"])
    per_node = len(expected) // len(names)
    for name in names:
        entries = audit_entries(federation, name)[before[name] :]
        assert len(entries) == per_node, (name, len(entries))
        assert {e["event"] for e in entries} == {"refusal"}
        assert federation.nodes[name].process.poll() is None, f"{name} died"
    print(
        f"{len(expected)} malformed messages ({outcome['messages']} crafted + "
        f"{2 * len(names)} replay) to {len(names)} nodes: all refused and logged; "
        f"crafted round {outcome['crafted_seconds']:.1f} s, all {outcome['seconds']:.1f} s, "
        f"submit to verdict {time.monotonic() - started:.1f} s"
    )


def test_a_normal_analysis_succeeds_afterwards(federation, tmp_path):
    names = sorted(federation.centres)
    started = time.monotonic()
    federation.analyse(
        tmp_path / "results.json",
        round_settings=RoundSettings(timeout=30.0, wait_for_nodes=30.0),
        run_name="after",
    )
    results = json.loads((tmp_path / "results.json").read_text())
    plan = default_plan()
    pooled = sum(summarise_centre(federation.centres[n], plan) for n in names)
    reference = json.loads(
        json.dumps(build_results(np.asarray(pooled, np.int64), plan, len(names)), default=float)
    )
    assert results["participants"] == names and results["attempts"] == 1
    assert {k: v for k, v in results.items() if k not in PROVENANCE_KEYS} == {
        k: v for k, v in reference.items() if k not in PROVENANCE_KEYS
    }
    for name in names:
        answer, reveal = audit_entries(federation, name)[-2:]
        assert (answer["event"], reveal["event"]) == ("analysis-reply", "self-mask-revealed")
    print(f"normal analysis after the malformed messages: {time.monotonic() - started:.1f} s")
