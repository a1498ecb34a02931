"""The node's side of the random-effects exchange of a heterogeneity plan.

A coordinator that could ask for Σ1/(v + τ²) and Σθ/(v + τ²) at many τ² would learn
rational functions of τ² whose poles are the centres' −vᵢ: enough of them give each
centre's own (θᵢ, vᵢ). The node answers one τ² per estimate and release epoch; these
tests attack that rule (another τ², a twin plan, a plan without heterogeneity, bad τ²)
and check what is answered, refused and audit-logged.
"""

from __future__ import annotations

import secrets
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.node.summarise.centre_estimates import summarise_random_effects
from sscjak.shared.plan import Plan, parse_plan
from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    RANDOM_EFFECTS_REQUEST_KIND,
    REFUSAL_KIND,
    AnalysisRequest,
    UnmaskRequest,
    decode_reply,
    encode_request,
    encode_unmask_request,
)
from sscjak.shared.roster import Roster
from sscjak.shared.secure_aggregation import remove_self_masks, sum_masked
from sscjak.shared.summary_layout import RandomEffectsLayout

PLAN = parse_plan('outcomes = ["fvc_pct", "mrss"]\nmonths = [12]\nheterogeneity = true\n')
#: The same estimates under another title and per-centre minimum: a twin for τ².
TWIN = parse_plan(
    'title = "another title"\noutcomes = ["fvc_pct", "mrss"]\nmonths = [12]\n'
    "heterogeneity = true\nmin_centre_n = 7\n"
)


def nodes_for(root: Path, *plans: Plan) -> tuple[Roster, dict[str, NodeContext]]:
    folders = list(demo_centre_folders().values())
    roster, nodes = prepare_simulated_nodes(folders, plans[0], root)
    for plan in plans[1:]:
        for node in nodes.values():
            node.approvals.record(plan, roster)
    return roster, nodes


def request(roster: Roster, nodes: dict, plan: Plan, tau2: tuple[float, ...] | None) -> dict:
    return encode_request(
        AnalysisRequest(
            plan_sha256=plan.sha256,
            plan_toml=plan.canonical_toml,
            roster_sha256=roster.sha256,
            participants=tuple(sorted(nodes)),
            nonce=secrets.token_hex(32),
            attempt=1,
            tau2=tau2,
        )
    )


def reason(reply: dict) -> str:
    assert reply["kind"] == REFUSAL_KIND, reply["kind"]
    return str(reply["reason"])


def test_a_random_effects_request_is_answered_and_unmasks_to_the_plain_sum(
    tmp_path: Path,
) -> None:
    roster, nodes = nodes_for(tmp_path, PLAN)
    tau2 = (0.015, 0.25)
    payload = request(roster, nodes, PLAN, tau2)
    assert payload["kind"] == RANDOM_EFFECTS_REQUEST_KIND
    replies = {name: handle_analysis_request(payload, node) for name, node in nodes.items()}
    assert all(reply["kind"] == ANALYSIS_REPLY_KIND for reply in replies.values())
    layout = RandomEffectsLayout.for_plan(PLAN)
    assert {len(reply["masked"]) for reply in replies.values()} == {8 * layout.length}
    unmask = encode_unmask_request(
        UnmaskRequest(
            plan_sha256=payload["plan_sha256"],
            roster_sha256=roster.sha256,
            nonce=payload["nonce"],
            participants=tuple(sorted(nodes)),
        )
    )
    seeds = [decode_reply(handle_analysis_request(unmask, node)) for node in nodes.values()]
    pooled = remove_self_masks(
        sum_masked(decode_reply(reply).masked_vector() for reply in replies.values()),
        (seed.self_mask_seed for seed in seeds),
    )
    exact = tuple(Fraction(value) for value in tau2)
    plain = sum(summarise_random_effects(node.data_folder, PLAN, exact) for node in nodes.values())
    np.testing.assert_array_equal(pooled, plain)
    # The audit log says which τ² the node answered, beside what it released.
    node = next(iter(nodes.values()))
    answer = next(e for e in node.audit_log.entries() if e["event"] == "analysis-reply")
    released = answer["released_summary"]
    assert released["tau2_received"] == {"fvc_pct.12": 0.015, "mrss.12": 0.25}
    assert released["layout"] == "sscjak.random-effects/1"


def test_a_second_tau2_for_the_same_estimate_is_refused_even_through_a_twin_plan(
    tmp_path: Path,
) -> None:
    roster, nodes = nodes_for(tmp_path, PLAN, TWIN)
    node = nodes[sorted(nodes)[0]]
    first = handle_analysis_request(request(roster, nodes, PLAN, (0.01, 0.2)), node)
    assert first["kind"] == ANALYSIS_REPLY_KIND
    # The same τ² again (a retry after a dropout) is answered.
    again = handle_analysis_request(request(roster, nodes, PLAN, (0.01, 0.2)), node)
    assert again["kind"] == ANALYSIS_REPLY_KIND
    # Another τ² for FVC at 12 months: refused, directly or through the twin plan.
    other = handle_analysis_request(request(roster, nodes, PLAN, (0.02, 0.2)), node)
    assert "already released its estimate of fvc_pct at 12 months with tau2 = 0.01" in reason(
        other
    )
    twin = handle_analysis_request(request(roster, nodes, TWIN, (0.01, 0.3)), node)
    assert "mrss at 12 months with tau2 = 0.2" in reason(twin)
    # Nothing was recorded for the refused requests: the first τ² still holds.
    answered = node.ledger.estimate_settings(node.ledger.epoch().epoch_id, "tau2")
    assert sorted(float.fromhex(value) for value in answered.values()) == [0.01, 0.2]


def test_a_plan_with_another_window_is_another_estimate(tmp_path: Path) -> None:
    wider = parse_plan(PLAN.canonical_toml.replace("window_months = 2", "window_months = 3"))
    roster, nodes = nodes_for(tmp_path, PLAN, wider)
    node = nodes[sorted(nodes)[0]]
    assert handle_analysis_request(request(roster, nodes, PLAN, (0.01, 0.2)), node)[
        "kind"
    ] == ANALYSIS_REPLY_KIND
    assert handle_analysis_request(request(roster, nodes, wider, (0.05, 0.1)), node)[
        "kind"
    ] == ANALYSIS_REPLY_KIND


def test_a_plan_without_heterogeneity_has_no_random_effects_exchange(tmp_path: Path) -> None:
    plain = parse_plan('outcomes = ["fvc_pct", "mrss"]\nmonths = [12]\n')
    roster, nodes = nodes_for(tmp_path, plain)
    node = nodes[sorted(nodes)[0]]
    reply = handle_analysis_request(request(roster, nodes, plain, (0.0, 0.0)), node)
    assert "does not ask for heterogeneity" in reason(reply)


@pytest.mark.parametrize(
    ("tau2", "expected"),
    [
        ((0.01,), "one tau2 per change cell (2), got 1"),
        ((0.01, 0.02, 0.03), "got 3"),
    ],
)
def test_the_wrong_number_of_tau2_is_refused(tmp_path: Path, tau2: tuple, expected: str) -> None:
    roster, nodes = nodes_for(tmp_path, PLAN)
    reply = handle_analysis_request(request(roster, nodes, PLAN, tau2), next(iter(nodes.values())))
    assert expected in reason(reply)


@pytest.mark.parametrize(
    "bad",
    [["nan"], ["-0x1.0p-3", "0x0p+0"], ["0x1.0p+30", "0x0p+0"], ["0.5", "0x0p+0"], [1, 2], ["inf"]],
)
def test_a_malformed_tau2_is_refused_as_a_malformed_request(tmp_path: Path, bad: list) -> None:
    roster, nodes = nodes_for(tmp_path, PLAN)
    payload = request(roster, nodes, PLAN, (0.0, 0.0))
    payload["tau2"] = bad
    node = next(iter(nodes.values()))
    assert "malformed request" in reason(handle_analysis_request(payload, node))
    assert node.ledger.estimate_settings(node.ledger.epoch().epoch_id, "tau2") == {}


def test_a_random_effects_exchange_needs_four_participants(tmp_path: Path) -> None:
    folders = list(demo_centre_folders().values())[:3]
    roster, nodes = prepare_simulated_nodes(folders, PLAN, tmp_path)
    node = next(iter(nodes.values()))
    assert handle_analysis_request(request(roster, nodes, PLAN, None), node)[
        "kind"
    ] == ANALYSIS_REPLY_KIND
    reply = handle_analysis_request(request(roster, nodes, PLAN, (0.01, 0.2)), node)
    assert "needs at least 4 participants" in reason(reply)


def test_the_policy_can_refuse_heterogeneity(tmp_path: Path) -> None:
    roster, nodes = nodes_for(tmp_path, PLAN)
    node = next(iter(nodes.values()))
    (node.state_dir / "policy.toml").write_text("allow_heterogeneity = false\n", encoding="utf-8")
    for tau2 in (None, (0.0, 0.0)):
        reply = handle_analysis_request(request(roster, nodes, PLAN, tau2), node)
        assert "allow_heterogeneity" in reason(reply)


def test_attack_two_per_centre_minimums_isolate_one_centres_estimate(tmp_path: Path) -> None:
    """Two plans equal but for min_centre_n, over one set: a centre with n between the two
    minimums is in one pooled sum and not the other, so the difference would be its own
    (w, wθ, wθ², w²). The node sends its terms under one min_centre_n per estimate."""
    from sscjak.node.summarise.summary_vector import summarise_centre
    from sscjak.shared.summary_layout import SummaryLayout

    low = parse_plan(
        'outcomes = ["mrss"]\nmonths = [24]\nheterogeneity = true\nmin_centre_n = 3\n'
    )
    high = parse_plan(low.canonical_toml.replace("min_centre_n = 3", "min_centre_n = 40"))
    roster, nodes = nodes_for(tmp_path, low, high)
    # The attack would work: some centre is in under one minimum and out under the other.
    segment = "het.mrss.24"
    included = {
        name: (
            SummaryLayout.for_plan(low).counts(summarise_centre(n.data_folder, low), segment),
            SummaryLayout.for_plan(high).counts(summarise_centre(n.data_folder, high), segment),
        )
        for name, n in nodes.items()
    }
    isolated = [n for n, (a, b) in included.items() if a["centres"] and b["centres_left_out"]]
    assert isolated, "the demo centres must make the attack possible"
    for name in isolated:
        node = nodes[name]
        first = handle_analysis_request(request(roster, nodes, low, None), node)
        assert first["kind"] == ANALYSIS_REPLY_KIND
        second = handle_analysis_request(request(roster, nodes, high, None), node)
        assert "with min_centre_n = 3 in this release epoch" in reason(second)
        # The same minimum again (a rerun) is answered.
        again = handle_analysis_request(request(roster, nodes, low, None), node)
        assert again["kind"] == ANALYSIS_REPLY_KIND


def test_the_approval_text_says_what_a_heterogeneity_plan_releases() -> None:
    from sscjak.node.guard.approvals import are_twins, describe_release

    text = describe_release(PLAN, Roster(()))
    assert "ITS OWN SMC and weight" in text
    assert "min_centre_n and one tau2 only" in text
    assert "het.fvc_pct.12 (6 numbers)" in text
    # Another SMC kind or per-centre minimum changes what the het segments hold.
    assert not are_twins(PLAN, TWIN)
    assert "heterogeneity" not in describe_release(
        parse_plan('outcomes = ["fvc_pct", "mrss"]\nmonths = [12]\n'), Roster(())
    )
