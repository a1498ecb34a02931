"""The coordinator's round: two exchanges, retries after dropouts, seeds checked."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.federation.secure_round import (
    InProcessTransport,
    RoundProgress,
    SecureRoundError,
    run_secure_analysis,
)
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import ANALYSIS_REQUEST_KIND, UNMASK_REQUEST_KIND, decode_request
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
def test_two_exchanges_give_the_exact_pooled_sum(tmp_path: Path, count: int) -> None:
    transport, vectors, roster = _federation(tmp_path, count)
    seen: list[RoundProgress] = []
    result = run_secure_analysis(transport, PLAN, roster, progress=seen.append)
    assert result.attempts == 1 and len(transport.sent) == 2
    assert next(iter(transport.sent[1].values()))["kind"] == UNMASK_REQUEST_KIND
    assert result.participants == sorted(vectors)
    np.testing.assert_array_equal(result.pooled, sum(vectors.values()))
    assert seen[0].describe() == f"attempt 1: {count}/{count} nodes answered"
    assert seen[1].describe() == f"attempt 1: {count}/{count} seeds revealed"


def test_dropout_reruns_with_the_survivors_and_a_fresh_nonce(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 5)
    transport.unreachable.add("centre-03")
    seen: list[RoundProgress] = []
    result = run_secure_analysis(transport, PLAN, roster, progress=seen.append)
    assert result.attempts == 2
    assert result.participants == ["centre-00", "centre-01", "centre-02", "centre-04"]
    survivors = sum(v for name, v in vectors.items() if name != "centre-03")
    np.testing.assert_array_equal(result.pooled, survivors)
    # attempt 1 (summaries only), attempt 2 (summaries, seeds)
    assert len(transport.sent) == 3
    first, second = (decode_request(next(iter(sent.values()))) for sent in transport.sent[:2])
    assert first.nonce != second.nonce
    assert second.participants == tuple(result.participants) and second.attempt == 2
    assert seen[0].missing == ("centre-03",) and "centre-03 did not answer" in seen[0].describe()
    assert result.excluded == {"centre-03": "did not answer"}


def test_refusing_and_garbled_nodes_are_left_out_of_the_rerun(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 5)
    for state in (tmp_path / "state").iterdir():  # the centres accept sets two short
        (state / "policy.toml").write_text("max_missing_centres = 2\n")
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
        RoundSettings(min_nodes=2)


def test_attempts_are_capped(tmp_path: Path) -> None:
    transport, _, roster = _federation(tmp_path, 6)
    dropping = iter(["centre-05", "centre-04", "centre-03"])
    original = transport.exchange

    def one_more_dropout_each_time(requests: dict, timeout: float) -> dict:
        transport.unreachable.add(next(dropping))
        return original(requests, timeout)

    transport.exchange = one_more_dropout_each_time  # type: ignore[method-assign]
    with pytest.raises(SecureRoundError, match="no complete analysis after 2 attempts"):
        run_secure_analysis(transport, PLAN, roster, settings=RoundSettings(max_attempts=2))


def test_a_coordinator_that_keeps_rerunning_gets_the_same_set_only(tmp_path: Path) -> None:
    # every node is pinned to the set of its first result: reruns over it are allowed
    # (they give the same sum), a rerun over a smaller set is refused
    transport, vectors, roster = _federation(tmp_path, 4)
    for _ in range(2):
        result = run_secure_analysis(transport, PLAN, roster)
        np.testing.assert_array_equal(result.pooled, sum(vectors.values()))
    with pytest.raises(SecureRoundError, match="one participant set per epoch"):
        run_secure_analysis(transport, PLAN, roster, participants=roster.names[:3])


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


def test_a_dropout_in_the_first_exchange_is_retried_with_the_survivors(tmp_path: Path) -> None:
    transport, vectors, roster = _federation(tmp_path, 5)
    transport.unreachable.add("centre-01")
    result = run_secure_analysis(transport, PLAN, roster)
    assert result.attempts == 2 and len(transport.sent) == 3
    survivors = sum(v for name, v in vectors.items() if name != "centre-01")
    np.testing.assert_array_equal(result.pooled, survivors)


def lose_after_the_first_exchange(transport: InProcessTransport, name: str) -> None:
    """Make ``name`` unreachable once the first exchange is over (its masked summary
    arrived), as a node lost between the two exchanges."""
    original = transport.exchange

    def exchange(requests: dict, timeout: float) -> dict:
        replies = original(requests, timeout)
        if len(transport.sent) == 1:
            transport.unreachable.add(name)
        return replies

    transport.exchange = exchange  # type: ignore[method-assign]


def test_a_node_lost_between_the_exchanges_is_waited_for_and_the_same_set_retried(
    tmp_path: Path,
) -> None:
    transport, vectors, roster = _federation(tmp_path, 4)
    lose_after_the_first_exchange(transport, "centre-02")
    waited: list[list[str]] = []

    def centre_02_comes_back(names: list[str], timeout: float) -> bool:
        waited.append(names)
        transport.unreachable.clear()
        return True

    transport.wait_for = centre_02_comes_back  # type: ignore[method-assign]
    result = run_secure_analysis(transport, PLAN, roster)
    assert waited == [["centre-02"]]
    assert result.attempts == 2 and result.participants == roster.names
    np.testing.assert_array_equal(result.pooled, sum(vectors.values()))
    first, second = (decode_request(transport.sent[i]["centre-00"]) for i in (0, 2))
    assert first.participants == second.participants and first.nonce != second.nonce


def test_a_lost_node_is_waited_for_before_each_next_attempt_and_never_after_the_last(
    tmp_path: Path,
) -> None:
    transport, _, roster = _federation(tmp_path, 4)
    lose_after_the_first_exchange(transport, "centre-02")
    waited: list[int] = []

    def never_back(names: list[str], timeout: float) -> bool:
        waited.append(len(transport.sent))
        return False

    transport.wait_for = never_back  # type: ignore[method-assign]
    settings = RoundSettings(max_attempts=3)
    with pytest.raises(SecureRoundError, match="no complete analysis after 3 attempts"):
        run_secure_analysis(transport, PLAN, roster, settings=settings)
    # attempt 1: both exchanges, then a wait; attempts 2 and 3: the masked exchange only
    assert len(transport.sent) == 4
    assert waited == [2, 3]


def test_a_node_lost_for_good_between_the_exchanges_is_never_replaced_by_a_smaller_set(
    tmp_path: Path,
) -> None:
    transport, _, roster = _federation(tmp_path, 4)
    original = transport.exchange

    def lose_centre_02_after_the_first_exchange(requests: dict, timeout: float) -> dict:
        replies = original(requests, timeout)
        if next(iter(requests.values()))["kind"] == ANALYSIS_REQUEST_KIND:
            transport.unreachable.add("centre-02")
        return replies

    transport.exchange = lose_centre_02_after_the_first_exchange  # type: ignore[method-assign]
    with pytest.raises(SecureRoundError, match="centre-02: did not answer"):
        run_secure_analysis(transport, PLAN, roster)
    # every later attempt asked the whole set again, never the three others alone
    assert all(sorted(sent) == roster.names for sent in transport.sent)
    # the others pinned their epoch to the whole set: a smaller set stays refused
    transport.unreachable.clear()
    transport.exchange = original  # type: ignore[method-assign]
    with pytest.raises(SecureRoundError, match="one participant set per epoch"):
        run_secure_analysis(transport, PLAN, roster, participants=roster.names[:3])
