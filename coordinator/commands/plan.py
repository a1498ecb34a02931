"""``sscjak-coordinator plan new|show``: write an analysis plan, and check one.

``new --out PLAN.toml`` writes the default plan (the reference study) with a comment on
every key, to edit; it refuses to replace an existing file unless ``--force``.
``show PLAN.toml`` parses the file like a node does and prints its canonical text (what
each centre approves), its ``plan_sha256``, the change cells and the size of the
summary vector every node sends; a plan that cannot be used is an error listing every
problem. The plan then goes to every centre, whose steward approves it with
``sscjak-node approve PLAN.toml --roster roster.toml --state STATE`` (docs/federation.md).
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from sscjak.shared.cli_support import UserError, counted
from sscjak.shared.data_contract import MEASURES
from sscjak.shared.disclosure import suppression_sentence
from sscjak.shared.plan import (
    MAX_MONTHS,
    MAX_WINDOW_MONTHS,
    SMC_KINDS,
    Plan,
    PlanError,
    default_plan,
    load_plan,
)
from sscjak.shared.summary_layout import RandomEffectsLayout, SummaryLayout

#: Bytes per summary-vector word on the wire (unsigned 64-bit integers).
BYTES_PER_WORD = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="write the default analysis plan, or show a plan's canonical text and hash",
        description=(
            "Make and check the analysis plan the centres approve. 'plan new' writes the "
            "default plan (the reference study) to a file to edit; 'plan show' checks a "
            "plan file and prints its canonical text, its plan_sha256, its change cells and "
            "the size of the summary vector each node sends."
        ),
    )
    actions = parser.add_subparsers(dest="plan_action", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="write the default plan to a file, with a comment on every key",
        description=(
            "Write the default plan (the reference study: seven measures at 12 and 24 "
            "months, window of 2 months, minimum cell 5) to FILE, each key explained in a "
            "comment. Comments and spacing are not part of the plan: its identity is the "
            "hash of its canonical text ('plan show')."
        ),
    )
    new.add_argument("--out", type=Path, required=True, metavar="FILE", help="plan TOML to write")
    new.add_argument(
        "--force", action="store_true", help="replace FILE if it exists (default: refuse)"
    )
    new.set_defaults(func=run_new)
    show = actions.add_parser(
        "show",
        help="check a plan file; print its canonical text, plan_sha256 and vector size",
        description=(
            "Read PLAN as a node reads it and print its canonical text (what each centre "
            "approves), its plan_sha256, its change cells and the size of the summary "
            "vector. Exit 1 listing every problem if PLAN cannot be used."
        ),
    )
    show.add_argument("plan", metavar="PLAN", help="plan TOML file, or 'default'")
    show.set_defaults(func=run_show)


def commented_plan_text(plan: Plan) -> str:
    """The plan's canonical text, preceded by a comment explaining every key."""
    outcomes = textwrap.wrap(
        ", ".join(f"{name} ({m.label})" for name, m in MEASURES.items()), width=58
    )
    header = [
        "# sscjak analysis plan. Edit the values; comments and spacing are not part of the",
        "# plan: its identity (plan_sha256) is the hash of its canonical text, which",
        "# 'sscjak-coordinator plan show FILE' prints. Every centre approves the plan with",
        "# 'sscjak-node approve FILE --roster roster.toml --state STATE'; any change to a",
        "# value is a new plan that every centre approves again.",
        "#",
        "# title                free text shown at approval and in the report",
        "# outcomes             any of:",
        *(f"#                        {line}" for line in outcomes),
        "# months               follow-up time points, in months after the JAK inhibitor",
        f"#                      start (at most {MAX_MONTHS})",
        "# window_months        half-width of the window around each time point, in months",
        f"#                      (at most {MAX_WINDOW_MONTHS})",
        "# min_cell             pooled change cells with fewer patients are suppressed",
        f"# smc                  {' or '.join(repr(k) for k in SMC_KINDS)}: the SMC on the",
        "#                      baseline SD, or on the SD of the change (d_z)",
        "# exact_conditional_p  true adds the exact conditional signed-rank p-value",
        "#",
        "# Optional keys (docs/commands.md): by, time_to_event,",
        "# time_grid_days, horizon_months, at_risk_months; heterogeneity = true with",
        "# min_centre_n; and [[measures]] tables declaring further visits columns.",
        "",
    ]
    return "\n".join(header) + plan.canonical_toml


def _read_plan(argument: str) -> Plan:
    if argument == "default":
        return default_plan()
    try:
        return load_plan(Path(argument))
    except PlanError as error:
        raise UserError(str(error)) from None


def describe_plan(plan: Plan, source: str) -> str:
    """What ``plan show`` prints: canonical text, hash, change cells, vector size."""
    layout = SummaryLayout.for_plan(plan)
    cells = plan.cells
    months = ", ".join(str(m) for m in plan.months)
    window = f"{plan.window_months:g}"
    lines = [
        f"Plan {source}",
        f"plan_sha256: {plan.sha256}",
        "",
        "Canonical text (what each centre approves; plan_sha256 is its SHA-256):",
        "",
        *(f"    {line}" for line in plan.canonical_toml.splitlines()),
        "",
        f"Change cells: {len(cells)} ({counted(len(plan.outcomes), 'outcome')} × "
        f"{counted(len(plan.months), 'time point')}, window ±{window} "
        f"{'month' if window == '1' else 'months'}):",
    ]
    for outcome in plan.outcomes:
        measure = plan.measure(outcome)
        lines.append(f"    {measure.label} ({outcome}): {months} months")
    lines += [
        suppression_sentence(plan.min_cell),
        *_time_to_event_lines(plan),
        *_heterogeneity_lines(plan),
        "",
        f"Summary vector: {layout.length:,} integers, "
        f"{BYTES_PER_WORD * layout.length:,} bytes per node "
        "(sent masked; only the pooled sum is ever unmasked)",
        "",
        "Send the plan file to every centre; each centre's steward checks it and approves it with",
        f"    sscjak-node approve {source} --roster roster.toml --state STATE",
        "which shows the same plan_sha256.",
    ]
    return "\n".join(lines) + "\n"


def run_new(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        raise UserError(f"{out} exists: give --force to replace it")
    if out.is_dir():
        raise UserError(f"{out} is a folder: give a file name")
    plan = default_plan()
    out.write_text(commented_plan_text(plan), encoding="utf-8")
    print(f"Default plan written to {out} (plan_sha256 {plan.sha256}).")
    print(f"Edit it, then check it with: sscjak-coordinator plan show {out}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    plan = _read_plan(args.plan)
    print(describe_plan(plan, args.plan), end="")
    return 0


def _heterogeneity_lines(plan: Plan) -> list[str]:
    """The plan's heterogeneity part for ``plan show`` (nothing without one)."""
    if not plan.heterogeneity:
        return []
    extra = RandomEffectsLayout.for_plan(plan).length
    return [
        "Heterogeneity between centres per change cell (Q, I², DerSimonian–Laird τ², "
        f"random-effects SMC); centres with fewer than {plan.min_centre_n} patients in a cell "
        "are left out of it, and a cell is shown from 4 contributing centres on.",
        f"It takes a second secure sum (the random-effects exchange): {extra:,} integers "
        f"({BYTES_PER_WORD * extra:,} bytes) per node.",
    ]


def _time_to_event_lines(plan: Plan) -> list[str]:
    """The plan's time-to-event part for ``plan show`` (nothing without one)."""
    if not plan.time_to_event:
        return []
    by = f"by {plan.by} ({', '.join(plan.strata)})" if plan.by else "for the whole cohort"
    return [
        f"Time to event: {', '.join(plan.time_to_event)}, {by}; time grid "
        f"{plan.time_grid_days:g} days, horizon {plan.horizon_months} months, numbers at risk "
        f"at {', '.join(str(m) for m in plan.at_risk_months)} months.",
        "Strata with patients from one centre only are suppressed; curves are shown only "
        f"where at least {plan.min_cell} patients are at risk.",
    ]
