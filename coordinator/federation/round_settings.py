"""How the coordinator runs one secure analysis: every setting of a round, in one place.

The settings are validated once, here, and travel from the command line
(``sscjak-coordinator run``) through the Flower run config to the ServerApp and the round
(:func:`sscjak.coordinator.federation.secure_round.run_secure_analysis`) as this one
object, in the manner of the parameters of Flower's ``SecAggPlusWorkflow``.

Parameters
----------
timeout : float, default 60
    Seconds to wait for the answers of one exchange (the masked summaries, then the
    seeds), and for a node lost between the two exchanges to come back. It is also the
    lifetime of every message sent: a reply after it is refused by the SuperLink.
max_attempts : int, default 3
    Attempts in all. An attempt is one exchange when a node drops out before any seed
    was revealed (the survivors are asked again), two when it completes.
wait_for_nodes : float, default 30
    Seconds to wait, before the first attempt, for every roster node to be online.
min_nodes : int, default :data:`~sscjak.shared.protocol.MIN_PARTICIPANTS`
    Fewest nodes an attempt may pool; never below the protocol's minimum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sscjak.shared.protocol import MIN_PARTICIPANTS


@dataclass(frozen=True)
class RoundSettings:
    """The settings of one secure analysis (see the module docstring for each)."""

    timeout: float = 60.0
    max_attempts: int = 3
    wait_for_nodes: float = 30.0
    min_nodes: int = MIN_PARTICIPANTS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout}")
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not (math.isfinite(self.wait_for_nodes) and self.wait_for_nodes >= 0):
            raise ValueError(
                f"wait_for_nodes must be 0 or more seconds, got {self.wait_for_nodes}"
            )
        if self.min_nodes < MIN_PARTICIPANTS:
            raise ValueError(f"min_nodes must be at least {MIN_PARTICIPANTS}")

    def to_run_config(self) -> dict[str, Any]:
        """The settings as entries of a Flower run config (plain numbers)."""
        return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any]) -> RoundSettings:
        """The settings a run config carries; a missing entry takes its default."""
        defaults = cls()
        return cls(
            timeout=float(config.get("timeout", defaults.timeout)),
            max_attempts=int(config.get("max_attempts", defaults.max_attempts)),
            wait_for_nodes=float(config.get("wait_for_nodes", defaults.wait_for_nodes)),
            min_nodes=int(config.get("min_nodes", defaults.min_nodes)),
        )

    def longest_run_seconds(self, rounds: int = 1) -> float:
        """How long a run with these settings can take at most, with a margin: the wait for
        the nodes, then per attempt two exchanges and one wait for a lost node."""
        per_attempt = 3 * self.timeout + 10.0
        return self.wait_for_nodes + per_attempt * max(self.max_attempts, rounds) + 60.0


#: The settings of a round nobody changed.
DEFAULT_ROUND_SETTINGS = RoundSettings()
