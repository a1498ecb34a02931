"""The settings of a round: validated once, carried through the Flower run config intact."""

from __future__ import annotations

import math

import pytest

from sscjak.coordinator.commands.run import register as register_run
from sscjak.coordinator.federation.round_settings import DEFAULT_ROUND_SETTINGS, RoundSettings
from sscjak.shared.protocol import MIN_PARTICIPANTS


def test_settings_travel_through_the_run_config_unchanged() -> None:
    settings = RoundSettings(timeout=12.5, max_attempts=5, wait_for_nodes=0.0, min_nodes=4)
    assert RoundSettings.from_run_config(settings.to_run_config()) == settings
    assert RoundSettings.from_run_config({}) == DEFAULT_ROUND_SETTINGS


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout", 0.0, "timeout"),
        ("timeout", math.nan, "timeout"),
        ("timeout", math.inf, "timeout"),
        ("max_attempts", 0, "max_attempts"),
        ("wait_for_nodes", -1.0, "wait_for_nodes"),
        ("min_nodes", MIN_PARTICIPANTS - 1, f"at least {MIN_PARTICIPANTS}"),
    ],
)
def test_a_setting_out_of_range_is_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoundSettings(**{field: value})


def test_the_run_command_defaults_are_the_settings_defaults() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    register_run(parser.add_subparsers())
    args = parser.parse_args(["run", "--home", "h", "--roster", "r.toml", "--out", "o.json"])
    assert args.timeout == DEFAULT_ROUND_SETTINGS.timeout
    assert args.wait_for_nodes == DEFAULT_ROUND_SETTINGS.wait_for_nodes


def test_the_longest_run_covers_every_attempt_and_the_wait() -> None:
    settings = RoundSettings(timeout=10.0, max_attempts=3, wait_for_nodes=5.0)
    # per attempt: two exchanges and one wait for a lost node
    assert settings.longest_run_seconds() >= 5.0 + 3 * (3 * 10.0)
    assert settings.longest_run_seconds(rounds=6) > settings.longest_run_seconds()
