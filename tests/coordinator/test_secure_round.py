"""The coordinator's round: one exchange normally, reruns with survivors after dropouts."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from sscjak.coordinator.secure_round import (
    InProcessTransport,
    RoundProgress,
    SecureRoundError,
    run_secure_analysis,
)
from sscjak.node.analysis_handler import handle_analysis_request
from sscjak.node.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import decode_request
from sscjak.shared.summary_layout import SummaryLayout

PLAN = default_plan()
LAYOUT = SummaryLayout.for_plan(PLAN)


def _federation(
    root: Path, count: int, **settings: object
) -> tuple[InProcessTransport, dict[str, np.ndarray], object]:
    rng = np.random.default_rng(count)
    folders = [root / "data" / f"centre-{i:02d}" for i in range(count)]
    vectors = {
        f.name: rng.integers(-(2**40), 2**40, LAYOUT.length, dtype=np.int64) for f in folders
    }

    def summarise(folder: Path, plan: Plan) -> np.ndarray:
        return vectors[folder.name]

    roster, nodes = prepare_simulated_nodes(
        folders, PLAN, root / "state", summarise=summarise, **settings
    )
    transport = InProcessTransport(
        {
            name: functools.partial(handle_analysis_request, node=node)
            for name, node in nodes.items()
        }
    )
    return transport, vectors, roster


@pytest.mark.parametrize("count", [3, 5, 12])
def test_one_exchange_gives_the_exact_pooled_sum(tmp_path: Path, count: int) -> None:
    transport, vectors, roster = _federation(tmp_path, count)
    seen: list[RoundProgress] = []
    result = run_secure_analysis(transport, PLAN, roster, progress=seen.append)
    assert result.attempts == 1 and len(transport.sent) == 1
    assert result.participants == sorted(vectors)
    np.testing.assert_array_equal(result.pooled, sum(vectors.values()))
    assert seen[0].describe() == f"attempt 1: {count}/{count} nodes answered"


def test_dropout_reruns_with_the_survivors_and_a_fresh_nonce(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 5)
    transport.unreachable.add("centre-03")
    seen: list[RoundProgress] = []
    result = run_secure_analysis(transport, PLAN, roster, progress=seen.append)
    assert result.attempts == 2
    assert result.participants == ["centre-00", "centre-01", "centre-02", "centre-04"]
    survivors = sum(v for name, v in vectors.items() if name != "centre-03")
    np.testing.assert_array_equal(result.pooled, survivors)
    first, second = (decode_request(next(iter(sent.values()))) for sent in transport.sent)
    assert first.nonce != second.nonce
    assert second.participants == tuple(result.participants) and second.attempt == 2
    assert seen[0].missing == ("centre-03",) and "centre-03 did not answer" in seen[0].describe()
    assert result.excluded == {"centre-03": "did not answer"}


def test_refusing_and_garbled_nodes_are_left_out_of_the_rerun(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 5)
    # centre-01 answers something that is not a protocol message at all
    transport.handlers["centre-01"] = lambda request: {"kind": "garbage"}
    # centre-02 refuses
    transport.handlers["centre-02"] = lambda request: {
        "kind": "sscjak.refusal/1",
        "node": "centre-02",
        "reason": "not approved",
    }
    result = run_secure_analysis(transport, PLAN, roster)
    assert result.attempts == 2
    assert result.participants == ["centre-00", "centre-03", "centre-04"]
    expected = vectors["centre-00"] + vectors["centre-03"] + vectors["centre-04"]
    np.testing.assert_array_equal(result.pooled, expected)
    assert result.excluded["centre-02"] == "not approved"
    assert "unknown message kind" in result.excluded["centre-01"]
    # with one node fewer there would be only two left: no rerun, an error
    transport.unreachable.add("centre-04")
    with pytest.raises(SecureRoundError, match="at least 3"):
        run_secure_analysis(transport, PLAN, roster)


def test_never_below_three_nodes(tmp_path: Path) -> None:
    transport, _, roster = _federation(tmp_path, 3)
    transport.unreachable.add("centre-00")
    with pytest.raises(SecureRoundError, match="only 2 node"):
        run_secure_analysis(transport, PLAN, roster)
    assert len(transport.sent) == 1
    with pytest.raises(ValueError, match="at least 3"):
        run_secure_analysis(transport, PLAN, roster, min_nodes=2)


def test_attempts_are_capped(tmp_path: Path) -> None:
    transport, _, roster = _federation(tmp_path, 6)
    dropping = iter(["centre-05", "centre-04", "centre-03"])
    original = transport.exchange

    def one_more_dropout_each_time(requests: dict, timeout: float) -> dict:
        transport.unreachable.add(next(dropping))
        return original(requests, timeout)

    transport.exchange = one_more_dropout_each_time  # type: ignore[method-assign]
    with pytest.raises(SecureRoundError, match="no complete round after 2 attempts"):
        run_secure_analysis(transport, PLAN, roster, max_attempts=2)


def test_node_rerun_cap_stops_a_coordinator_that_keeps_rerunning(tmp_path: Path) -> None:
    # each node answers at most twice per approved plan: a third sum is never released
    transport, _, roster = _federation(tmp_path, 4, max_answers_per_plan=2)
    for _ in range(2):
        run_secure_analysis(transport, PLAN, roster)
    with pytest.raises(SecureRoundError, match="already answered 2 times"):
        run_secure_analysis(transport, PLAN, roster)


def test_replies_to_another_attempt_are_not_accepted(tmp_path: Path) -> None:
    transport, _, roster = _federation(tmp_path, 4)
    stale: dict[str, dict] = {}
    real = transport.handlers["centre-00"]

    def replay_first_reply(request: dict) -> dict:
        if "reply" not in stale:
            stale["reply"] = real(request)
        return stale["reply"]

    transport.handlers["centre-00"] = replay_first_reply
    transport.unreachable.add("centre-03")
    # attempt 1: centre-03 missing; attempt 2: centre-00's reply is for attempt 1's nonce
    with pytest.raises(SecureRoundError) as raised:
        run_secure_analysis(transport, PLAN, roster)
    assert "another plan or attempt" in str(raised.value)


def test_participants_outside_the_roster_are_rejected_up_front(tmp_path: Path) -> None:
    transport, _, roster = _federation(tmp_path, 3)
    with pytest.raises(SecureRoundError, match="not in the study roster: intruder"):
        run_secure_analysis(
            transport, PLAN, roster, participants=["centre-00", "centre-01", "intruder"]
        )
    assert transport.sent == []


def test_confirmed_unmasking_gives_the_exact_sum_in_two_exchanges(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 4)
    result = run_secure_analysis(transport, PLAN, roster, confirmed_unmasking=True)
    np.testing.assert_array_equal(result.pooled, sum(vectors.values()))
    assert len(transport.sent) == 2
    assert next(iter(transport.sent[1].values()))["kind"] == "sscjak.unmask/1"


def test_confirmed_unmasking_reruns_after_a_dropout_in_the_first_exchange(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 5)
    transport.unreachable.add("centre-01")
    result = run_secure_analysis(transport, PLAN, roster, confirmed_unmasking=True)
    assert result.attempts == 2 and len(transport.sent) == 3
    survivors = sum(v for name, v in vectors.items() if name != "centre-01")
    np.testing.assert_array_equal(result.pooled, survivors)


def test_confirmed_unmasking_defeats_the_lying_about_dropout_attack(tmp_path: Path) -> None:
    # A malicious coordinator gets every masked vector and all seeds for the full set
    # S, then claims centre-03 dropped and reruns with S \ {centre-03}: the nodes that
    # revealed their seed refuse, so the second sum (and x_centre-03) is never released.
    transport, vectors, roster = _federation(tmp_path, 5)
    first = run_secure_analysis(transport, PLAN, roster, confirmed_unmasking=True)
    np.testing.assert_array_equal(first.pooled, sum(vectors.values()))
    fewer = [n for n in roster.names if n != "centre-03"]
    for confirmed in (True, False):
        with pytest.raises(SecureRoundError, match="completed with confirmed unmasking"):
            run_secure_analysis(
                transport, PLAN, roster, participants=fewer, confirmed_unmasking=confirmed
            )


def test_a_node_lost_between_the_two_exchanges_ends_the_analysis(tmp_path: Path) -> None:
    transport, _, roster = _federation(tmp_path, 4)
    original = transport.exchange

    def lose_centre_02_after_the_first_exchange(requests: dict, timeout: float) -> dict:
        replies = original(requests, timeout)
        if next(iter(requests.values()))["kind"] == "sscjak.analysis/1":
            transport.unreachable.add("centre-02")
        return replies

    transport.exchange = lose_centre_02_after_the_first_exchange  # type: ignore[method-assign]
    with pytest.raises(SecureRoundError, match="centre-02 did not answer"):
        run_secure_analysis(transport, PLAN, roster, confirmed_unmasking=True)
    # the others revealed their seed: they refuse a rerun until approved again
    transport.unreachable.clear()
    with pytest.raises(SecureRoundError, match="completed with confirmed unmasking"):
        run_secure_analysis(transport, PLAN, roster, confirmed_unmasking=True)
