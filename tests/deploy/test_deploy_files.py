"""deploy/ checked as far as a machine without a container engine allows.

- ``compose.yaml`` parsed: services, volumes (data read-only), no published node port.
- The Dockerfiles parsed: base image, non-root user, what is copied and installed, the
  exposed port; every ``sscjak-…`` command they run is accepted by the real CLI parser
  and its ``--help`` runs from the installed console script.
- The systemd units: ``systemd-analyze verify`` (offline), ``systemd-analyze security
  --offline``, the hardening options, the env files' variables.
- Every ``sscjak-…`` command line in ``docs/deploy.md`` is accepted by the real CLI.
- (integration) The units' ExecStart lines, with the example env files mapped to a
  temporary layout on 127.0.0.1, started as real processes after the setup commands
  copied from ``docs/deploy.md``; one analysis with the documented ``run`` command; the
  processes stopped the way systemd's ``KillMode=mixed`` does (SIGTERM to the main PID).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from deploy_units import UNITS, read_unit, stop_timeout_seconds
from packaging.requirements import Requirement

from sscjak.shared.cli_support import build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOC = REPO / "docs" / "deploy.md"
VENV_BIN = Path(sys.executable).parent
#: The folders installed as ``sscjak.<folder>`` (setup.py).
INSTALLED_FOLDERS = ("node", "coordinator", "shared")
CLI_MODULES = {"sscjak-node": "sscjak.node.cli", "sscjak-coordinator": "sscjak.coordinator.cli"}
ENV_FILES = {
    "node": DEPLOY / "env" / "node.env.example",
    "coordinator": DEPLOY / "env" / "coordinator.env.example",
}
DOCKERFILES = {"node": DEPLOY / "node.Dockerfile", "coordinator": DEPLOY / "coordinator.Dockerfile"}
#: Commands that merely name a unit called sscjak-… (not an invocation of the CLI).
NOT_INVOCATIONS = {"systemctl", "journalctl"}
SHELL_OPERATORS = {";", "&&", "||", "|", ">", ">>", "<", "&", "(", ")"}


# --- the real command-line interface -------------------------------------------------


def cli_parser(program: str, argv: list[str]) -> argparse.ArgumentParser:
    """The parser ``program`` builds for ``argv``, as ``shared.cli_support.run_cli`` does."""
    module = importlib.import_module(CLI_MODULES[program])
    return build_parser(program, "", module.COMMAND_MODULES, argv)


def parse_with_cli(argv: list[str], where: str) -> argparse.Namespace:
    """``argv`` parsed by the real parser of its program; a test failure if rejected."""
    program = Path(argv[0]).name
    assert program in CLI_MODULES, f"{where}: {argv[0]} is not an sscjak program"
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            return cli_parser(program, argv[1:]).parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{where}: the CLI rejects {shlex.join(argv)}\n{errors.getvalue()}")


def subcommand_path(argv: list[str]) -> list[str]:
    """``sscjak-coordinator roster add …`` → [sscjak-coordinator, roster, add]."""
    path = [Path(argv[0]).name]
    for token in argv[1:]:
        if token.startswith("-"):
            break
        path.append(token)
        if path[1:] != ["roster"]:
            break
    return path


# --- reading shell text, Dockerfiles, units, env files --------------------------------


def sscjak_invocations(script: str) -> list[list[str]]:
    """Every ``sscjak-node``/``sscjak-coordinator`` command in a piece of shell."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token not in SHELL_OPERATORS:
                command.append(token)
                continue
            if command and command[0] not in NOT_INVOCATIONS:
                starts = [i for i, t in enumerate(command) if Path(t).name in CLI_MODULES]
                if starts:
                    found.append(command[starts[0] :])
            command = []
    return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_env(path: Path) -> dict[str, str]:
    env = {}
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "ENV":
            env.update(token.split("=", 1) for token in shlex.split(arguments))
    return env


def dockerfile_commands(path: Path) -> list[list[str]]:
    """The sscjak commands of RUN, CMD and ENTRYPOINT (exec form, sh -c, shell form)."""
    commands = []
    for keyword, arguments in dockerfile_instructions(path):
        if keyword not in {"RUN", "CMD", "ENTRYPOINT"}:
            continue
        if arguments.startswith("["):
            exec_form = json.loads(arguments)
            if exec_form[:2] == ["sh", "-c"]:
                commands += sscjak_invocations(exec_form[2])
            elif Path(exec_form[0]).name in CLI_MODULES:
                commands.append(exec_form)
        else:
            commands += sscjak_invocations(arguments)
    return commands


def expand(tokens: list[str], env: dict[str, str], where: str) -> list[str]:
    """``$VAR`` and ``${VAR}`` replaced from ``env``; an undefined variable fails."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in env, f"{where}: ${name} is not defined"
        return env[name]

    return [re.sub(r"\$\{(\w+)\}|\$(\w+)", value, token) for token in tokens]


def read_env_file(path: Path) -> dict[str, str]:
    """A systemd EnvironmentFile (KEY=VALUE lines, # comments)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, separator, value = line.partition("=")
            assert separator and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f"{path}: {line!r}"
            env[key] = value
    return env


def doc_code_blocks() -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


# --- compose --------------------------------------------------------------------------


def test_compose_runs_nodes_without_ports_and_with_read_only_data():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("node")}
    assert set(services) == {"coordinator", *nodes}
    assert len(nodes) >= 3, "an example study needs 3 nodes (secure aggregation)"
    declared_volumes = set(compose["volumes"])
    coordinator_expose = [
        a for k, a in dockerfile_instructions(DOCKERFILES["coordinator"]) if k == "EXPOSE"
    ]

    for name, service in services.items():
        role = "coordinator" if name == "coordinator" else "node"
        build = service["build"]
        assert (DEPLOY / build["context"]).resolve() == REPO, name
        assert (REPO / build["dockerfile"]).resolve() == DOCKERFILES[role].resolve(), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "user" not in service, f"{name}: runs as the image's non-root user"
        mounts = [volume.split(":") for volume in service["volumes"]]
        state = [m for m in mounts if m[1] == "/var/lib/sscjak"]
        assert len(state) == 1 and state[0][0] in declared_volumes, f"{name}: state volume"
        assert len(state[0]) == 2, f"{name}: the state volume is writable"
        others = [m for m in mounts if m[1] != "/var/lib/sscjak"]
        assert all(m[2:] == ["ro"] for m in others), f"{name}: only the state is writable"
        if role == "node":
            assert "ports" not in service and "expose" not in service, f"{name} listens"
            assert "network_mode" not in service, name
            env = service["environment"]
            data = [m for m in mounts if m[1] == env["SSCJAK_DATA"]]
            assert len(data) == 1 and data[0][2:] == ["ro"], f"{name}: data read-only"
            ca_folder = str(Path(env["SSCJAK_CA"]).parent)
            assert [m[2:] for m in mounts if m[1] == ca_folder] == [["ro"]], name
            assert env["SSCJAK_STATE"] == "/var/lib/sscjak"
            host, _, port = env["SSCJAK_SUPERLINK"].rpartition(":")
            assert host == "coordinator" and port.isdigit()
        else:
            published = service["ports"]
            assert published == [f"{coordinator_expose[0]}:{coordinator_expose[0]}"]
            assert coordinator_expose == ["9092"]
            control_port = dockerfile_env(DOCKERFILES["coordinator"])["SSCJAK_CONTROL_PORT"]
            assert not any(control_port in str(p) for p in published)


# --- Dockerfiles ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["node", "coordinator"])
def test_dockerfile_installs_the_project_and_runs_unprivileged(role):
    path = DOCKERFILES[role]
    instructions = dockerfile_instructions(path)
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    # every COPY source exists in the build context (the repository root)
    copied = set()
    for keyword, arguments in instructions:
        if keyword == "COPY":
            *sources, _target = shlex.split(arguments)
            for source in sources:
                assert (REPO / source).exists(), f"{path.name}: COPY {source} not in the repo"
                copied.add(Path(source).parts[0])
    assert set(INSTALLED_FOLDERS) | {"pyproject.toml", "setup.py", "README.md"} <= copied
    assert ".venv" not in copied and "tests" not in copied
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert "pip install --constraint deploy/constraints.txt ." in runs
    # the last USER is an unprivileged one, set before the command
    users = [(i, a) for i, (k, a) in enumerate(instructions) if k == "USER"]
    assert users and users[-1][1] not in {"root", "0"}
    assert users[-1][0] < keywords.index("CMD")
    assert re.search(r"useradd --system --uid (\d+)", runs).group(1) != "0"
    volumes = [json.loads(a) for k, a in instructions if k == "VOLUME"]
    env = dockerfile_env(path)
    state_variable = "SSCJAK_STATE" if role == "node" else "SSCJAK_HOME"
    assert env[state_variable] in volumes[0]
    exposed = [a for k, a in instructions if k == "EXPOSE"]
    if role == "node":
        assert exposed == [], "the node opens no port"
        assert env["SSCJAK_DATA"] in volumes[0]
    else:
        assert exposed == [env["SSCJAK_FLEET_ADDRESS"].rpartition(":")[2]]
    assert env["FLWR_TELEMETRY_ENABLED"] == "0"


@pytest.mark.parametrize("role", ["node", "coordinator"])
def test_every_container_command_runs_with_umask_0077(role, tmp_path):
    """The image's ENTRYPOINT sets umask 0077, then runs the command it is given (the CMD,
    or what ``docker compose run`` passes): files the processes create are private, like
    systemd's ``UMask=0077``. Run here with the image's shell semantics (``sh -c``)."""
    instructions = dockerfile_instructions(DOCKERFILES[role])
    entrypoints = [json.loads(a) for k, a in instructions if k == "ENTRYPOINT"]
    assert len(entrypoints) == 1, "exactly one ENTRYPOINT, in exec form"
    entrypoint = entrypoints[0]
    assert entrypoint[:2] == ["sh", "-c"]
    keywords = [k for k, _ in instructions]
    assert keywords.index("ENTRYPOINT") < keywords.index("CMD")
    probe = tmp_path / "created"
    script = f"umask; : > {shlex.quote(str(probe))}"
    done = subprocess.run(
        [*entrypoint, "sh", "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0077"
    assert stat.S_IMODE(probe.stat().st_mode) == 0o600
    # the CMD's arguments reach the program unchanged (``exec "$@"``)
    echoed = subprocess.run(
        [*entrypoint, "printf", "%s|", "a b", "$HOME"], capture_output=True, text=True
    )
    assert echoed.stdout == "a b|$HOME|"


def test_the_images_build_context_makes_a_complete_package(tmp_path):
    """What the Dockerfile COPYs is enough for ``pip install .``: every module, the demo
    centres and both commands end up in the package (built offline, without deps)."""
    for path in DOCKERFILES.values():
        instructions = dockerfile_instructions(path)
        for keyword, arguments in instructions:
            if keyword == "RUN":  # the shell of python:3.11-slim is dash
                done = subprocess.run(["sh", "-n", "-c", arguments], capture_output=True, text=True)
                assert done.returncode == 0, f"{path.name}: RUN {arguments}\n{done.stderr}"
    copies = {
        role: [a for k, a in dockerfile_instructions(path) if k == "COPY"]
        for role, path in DOCKERFILES.items()
    }
    assert copies["node"] == copies["coordinator"], "both images install the same package"
    context = tmp_path / "context"
    context.mkdir()
    for keyword, arguments in dockerfile_instructions(DOCKERFILES["node"]):
        if keyword == "COPY":
            *sources, target = shlex.split(arguments)
            for source in sources:  # Docker's COPY: into a folder if TARGET ends with /
                destination = context / target
                if target.endswith("/"):
                    destination = destination / Path(source).name
                if (REPO / source).is_dir():
                    ignore = shutil.ignore_patterns("__pycache__")
                    shutil.copytree(REPO / source, destination, ignore=ignore)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / source, destination)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "wheel"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "wheel").glob("sscjak-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    # every module in every folder below node/, coordinator/ and shared/ is installed:
    # a new sub-package is found without being listed anywhere
    modules = 0
    for folder in INSTALLED_FOLDERS:
        for module in (REPO / folder).rglob("*.py"):
            modules += 1
            assert f"sscjak/{module.relative_to(REPO).as_posix()}" in names, module
    demo_tables = list((REPO / "coordinator" / "synthetic" / "demo_centres").glob("*/*.csv"))
    for table in demo_tables:
        assert f"sscjak/coordinator/{table.relative_to(REPO / 'coordinator')}" in names
    for program, module in CLI_MODULES.items():
        assert f"{program} = {module}:main" in scripts
    print(
        f"wheel from the image's build context: {modules} modules, {len(demo_tables)} demo tables"
    )


def test_container_and_unit_run_the_same_command_line():
    """Same program, sub-command, flags and variables; only where values come from differs."""
    for role in ("node", "coordinator"):
        (container,) = dockerfile_commands(DOCKERFILES[role])
        exec_start = shlex.split(read_unit(UNITS[role])["Service"]["ExecStart"])
        as_variables = [re.sub(r"\$\{(\w+)\}", r"$\1", t) for t in exec_start]
        assert Path(as_variables[0]).name == container[0]
        assert as_variables[1:] == container[1:], role


def test_every_sscjak_command_in_the_deploy_files_is_accepted_by_the_cli():
    commands: list[tuple[str, list[str]]] = []
    for path in DOCKERFILES.values():
        env = dockerfile_env(path)
        commands += [(path.name, expand(c, env, path.name)) for c in dockerfile_commands(path)]
    for role, path in UNITS.items():
        env = read_env_file(ENV_FILES[role])
        exec_start = shlex.split(read_unit(path)["Service"]["ExecStart"])
        commands.append((path.name, expand(exec_start, env, path.name)))
    documented = [c for block in doc_code_blocks() for c in sscjak_invocations(block)]
    commands += [("docs/deploy.md", c) for c in documented]
    assert len(documented) >= 12  # 8 for a systemd host, 4+ with containers

    help_pages: dict[tuple[str, ...], str] = {}
    for where, argv in commands:
        parse_with_cli(argv, where)
        path = tuple(subcommand_path(argv))
        if path not in help_pages:
            done = subprocess.run(
                [str(VENV_BIN / path[0]), *path[1:], "--help"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{where}: {' '.join(path)} --help\n{done.stderr}"
            help_pages[path] = done.stdout
        for flag in (t.split("=")[0] for t in argv[1:] if t.startswith("--")):
            assert flag in help_pages[path], f"{where}: {flag} not in {' '.join(path)} --help"
    print(f"{len(commands)} command lines checked; {len(help_pages)} distinct --help pages run")
    # the documented setup covers every step of the federation docs
    documented_paths = {" ".join(subcommand_path(c)) for c in documented}
    for step in (
        "sscjak-node validate",
        "sscjak-node keys",
        "sscjak-node approve",
        "sscjak-node preview",
        "sscjak-node history",
        "sscjak-coordinator certs",
        "sscjak-coordinator roster add",
        "sscjak-coordinator run",
    ):
        assert step in documented_paths, step


# --- systemd units --------------------------------------------------------------------


@pytest.mark.parametrize("role", ["node", "coordinator"])
def test_unit_is_hardened_and_matches_its_env_file(role):
    unit = read_unit(UNITS[role])
    service = unit["Service"]
    env = read_env_file(ENV_FILES[role])
    assert service["User"] == "sscjak" and service["Group"] == "sscjak"
    assert service["EnvironmentFile"] == f"/etc/sscjak/{role}.env"
    for key, expected in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "Restart": "on-failure",
        "KillMode": "mixed",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert service[key] == expected, f"{UNITS[role].name}: {key}"
    exec_start = shlex.split(service["ExecStart"])
    used = set(re.findall(r"\$\{(\w+)\}", service["ExecStart"]))
    assert used <= set(env), f"{ENV_FILES[role].name} lacks {used - set(env)}"
    state = env["SSCJAK_STATE" if role == "node" else "SSCJAK_HOME"]
    assert service["ReadWritePaths"] == state
    assert service["StateDirectory"] == state.removeprefix("/var/lib/")
    assert service["StateDirectoryMode"] == "0700"
    if role == "node":
        assert service["ReadOnlyPaths"] == env["SSCJAK_DATA"]
        assert not env["SSCJAK_DATA"].startswith(state)
    else:
        assert env["SSCJAK_ROSTER"].startswith(state + "/")
    assert exec_start[0].startswith("/opt/sscjak/venv/bin/")
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def units_for_this_machine(folder: Path) -> list[Path]:
    """Copies of the units whose program path points at this venv (the only change)."""
    copies = []
    for path in UNITS.values():
        text = path.read_text(encoding="utf-8")
        copy = folder / path.name
        copy.write_text(text.replace("/opt/sscjak/venv/bin/", f"{VENV_BIN}/"), encoding="utf-8")
        assert copy.read_text().count(str(VENV_BIN)) == 1
        copies.append(copy)
    return copies


def test_systemd_analyze_verifies_the_units_and_rates_them_ok(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian package 'systemd')"
    copies = units_for_this_machine(tmp_path)
    done = subprocess.run(
        [analyze, "verify", *map(str, copies)], capture_output=True, text=True, timeout=120
    )
    # verify exits 0 even for unknown keys: every warning on stderr counts
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # the check can fail: a misspelt option and a bad value are reported
    broken = tmp_path / "broken" / UNITS["node"].name
    broken.parent.mkdir()
    broken.write_text(
        copies[0]
        .read_text()
        .replace("ProtectSystem=strict", "ProtectSytem=strict\nPrivateTmp=maybe")
    )
    done = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True)
    assert "Unknown key 'ProtectSytem'" in done.stderr, done.stderr
    assert "Failed to parse boolean value, ignoring: maybe" in done.stderr, done.stderr
    for copy in copies:
        done = subprocess.run(
            [analyze, "security", "--offline=true", str(copy)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
        assert level, done.stdout + done.stderr
        print(f"{copy.name}: exposure {level.group(1)} {level.group(2)}")
        assert float(level.group(1)) <= 2.0 and level.group(2) in {"OK", "SAFE"}


def test_constraints_pin_what_pyproject_requires():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pinned = {}
    for line in (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pinned[requirement.name.lower().replace("_", "-")] = specifier.version
    assert "sscjak" not in pinned
    for dependency in pyproject["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = requirement.name.lower()
        assert name in pinned, f"{name} is not pinned in deploy/constraints.txt"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]}"


# --- the same commands, started as processes ------------------------------------------

SUDO = "sudo -u sscjak "
#: systemd's default PATH for services, and Debian sudo's secure_path: no venv on it.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVICE_UID = 65534  # 'nobody' stands in for the dedicated user 'sscjak'

#: Run "$@" as the unit would: its own mount namespace in which the whole file system is
#: read-only except $SANDBOX_WRITABLE (ReadWritePaths=), with a private /tmp (PrivateTmp=),
#: as an unprivileged user without capabilities and with no_new_privs (User=,
#: NoNewPrivileges=, CapabilityBoundingSet=). The folders in $SANDBOX_KEEP (the
#: checkout, its venv, the interpreter) stay visible, read-only, even where they live
#: under /tmp (hidden by the private /tmp; a CI clone may be there) or under a folder
#: others may not enter ($SANDBOX_BLOCKED, e.g. pyenv under /root, hidden by a tmpfs).
SANDBOX_SCRIPT = """set -e
i=0
for k in $SANDBOX_KEEP; do
  i=$((i + 1)); mkdir -p "$SANDBOX_STAGE/$i"; mount --bind "$k" "$SANDBOX_STAGE/$i"
done
for b in $SANDBOX_BLOCKED; do mount -t tmpfs -o mode=0755 tmpfs "$b"; done
for k in $SANDBOX_KEEP; do mkdir -p "$k" 2>/dev/null || true; done
for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
i=0
for k in $SANDBOX_KEEP; do
  i=$((i + 1)); mkdir -p "$k" 2>/dev/null || true
  mount --bind "$SANDBOX_STAGE/$i" "$k"; mount -o remount,bind,ro "$k"
done
for w in $SANDBOX_WRITABLE; do mount --bind "$w" "$w"; mount -o remount,bind,rw "$w"; done
exec setpriv --reuid="$SANDBOX_UID" --regid="$SANDBOX_UID" --clear-groups --no-new-privs \\
  --inh-caps=-all --bounding-set=-all "$@"
"""


def _outermost(paths: set[Path]) -> list[Path]:
    """The paths not inside another one of them, sorted."""
    return sorted(p for p in paths if not any(q != p and q in p.parents for q in paths))


class Sandbox:
    """Wraps commands in SANDBOX_SCRIPT; ``layout`` is where the script and stage live."""

    def __init__(self, layout: Path) -> None:
        self.script = layout / "sandbox.sh"
        self.script.write_text(SANDBOX_SCRIPT, encoding="utf-8")
        self.stage = layout / "stage"
        self.stage.mkdir()
        interpreter = Path(os.path.realpath(sys.executable))
        wanted = {
            Path(os.path.realpath(REPO)),
            Path(os.path.realpath(VENV_BIN.parent)),
            Path(os.path.realpath(sys.base_prefix)),
        }
        blocked: set[Path] = set()
        for path in {*wanted, interpreter}:
            for ancestor in reversed(path.parents):
                if not ancestor.stat().st_mode & stat.S_IXOTH:
                    blocked.add(ancestor)
                    break
        self.blocked = _outermost(blocked)
        tmp = Path("/tmp")
        self.keep = _outermost(
            {p for p in wanted if tmp in p.parents or any(b in p.parents for b in blocked)}
        )

    def wrap(self, argv: list[str], env: dict[str, str], writable: list[Path]):
        env = {**env, "SANDBOX_WRITABLE": " ".join(map(str, writable))}
        env["SANDBOX_KEEP"] = " ".join(map(str, self.keep))
        env["SANDBOX_BLOCKED"] = " ".join(map(str, self.blocked))
        env["SANDBOX_STAGE"] = str(self.stage)
        env["SANDBOX_UID"] = str(SERVICE_UID)
        command = ["unshare", "--mount", "--propagation", "private", "sh", str(self.script)]
        return [*command, *argv], env


def documented_commands() -> dict[str, str]:
    """First documented command run as the service user per sub-command ('sscjak-node keys')."""
    commands: dict[str, str] = {}
    for block in doc_code_blocks():
        for line in block.splitlines():
            if line.startswith(SUDO):
                (argv,) = sscjak_invocations(line)
                commands.setdefault(" ".join(subcommand_path(argv)), line)
    return commands


def mapped(text: str, mapping: dict[str, str]) -> str:
    """Replace the documented paths/hosts by the test's (longest first)."""
    for old in sorted(mapping, key=len, reverse=True):
        text = text.replace(old, mapping[old])
    return text


def run_documented(
    line: str,
    mapping: dict[str, str],
    sandbox: Sandbox,
    home: Path,
    answer: str | None = None,
) -> str:
    """A documented ``sudo -u sscjak [VAR=value…] COMMAND`` line, as sudo would run it.

    sudo resets the environment (secure_path, the user's HOME) and sets the VAR=value
    assignments given before the command. ``answer`` is typed at a terminal.
    """
    argv = shlex.split(mapped(line, mapping).removeprefix(SUDO))
    env = {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
    while "=" in argv[0] and not argv[0].startswith("/"):
        key, _, value = argv.pop(0).partition("=")
        env[key] = value
    program = shutil.which(argv[0], path=env["PATH"])
    assert program and Path(program).parent == VENV_BIN, f"{argv[0]} resolves to {program}"
    argv, env = sandbox.wrap(argv, env, [home])
    if answer is None:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        output, code = done.stdout + done.stderr, done.returncode
    else:  # the data steward types at a terminal
        controller, terminal = os.openpty()
        process = subprocess.Popen(
            argv,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        os.close(terminal)
        os.write(controller, answer.encode())
        output, _ = process.communicate(timeout=300)
        os.close(controller)
        code = process.returncode
    assert code == 0, f"{shlex.join(argv)}\n{output}"
    return output


def unit_process(role: str, mapping: dict[str, str], overrides: dict[str, str], sandbox: Sandbox):
    """The unit's ExecStart, as systemd would start it, in the test's layout.

    Environment: systemd's default PATH, then EnvironmentFile= (the example env file with
    its paths mapped), then Environment=. Writable: ReadWritePaths= only.
    """
    service = read_unit(UNITS[role])["Service"]
    env = {k: mapped(v, mapping) for k, v in read_env_file(ENV_FILES[role]).items()}
    env.update(overrides)
    argv = expand(shlex.split(mapped(service["ExecStart"], mapping)), env, UNITS[role].name)
    environment = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", **env}
    for assignment in shlex.split(mapped(service["Environment"], mapping)):
        key, _, value = assignment.partition("=")
        environment[key] = value
    writable = [Path(mapped(service["ReadWritePaths"], mapping))]
    return sandbox.wrap(argv, environment, writable)


def container_process(service_name: str, mapping: dict[str, str], sandbox: Sandbox):
    """The image's CMD with its ENV and the compose service's environment, outside a
    container: the same file-system rules (read-only but the state volume, private /tmp),
    container paths mapped to the test's layout."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"][service_name]
    dockerfile = (REPO / service["build"]["dockerfile"]).resolve()
    (command,) = [json.loads(a) for k, a in dockerfile_instructions(dockerfile) if k == "CMD"]
    env = {**dockerfile_env(dockerfile), **service["environment"]}
    environment = {k: mapped(v, mapping) for k, v in env.items()}
    # python:3.11-slim puts pip's scripts on PATH (/usr/local/bin); here: the venv's
    environment["PATH"] = f"{VENV_BIN}:{SYSTEM_PATH}"
    writable = [
        Path(mapped(volume.split(":")[1], mapping))
        for volume in service["volumes"]
        if not volume.endswith(":ro")
    ]
    return sandbox.wrap(command, environment, writable)


def tree_fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        + str(p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def service_directory(path: Path) -> Path:
    """``install -d -o sscjak -g sscjak -m 0700 PATH``."""
    path.mkdir(parents=True, mode=0o700)
    os.chown(path, SERVICE_UID, SERVICE_UID)
    return path


@pytest.fixture
def layout():
    """A folder outside /tmp (the sandbox's private /tmp hides /tmp), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="sscjak-deploy-test-", dir="/var/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.integration
def test_the_units_command_lines_run_an_analysis_after_the_documented_setup(layout, tmp_path):
    from ports import free_port

    from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
    from sscjak.shared.plan import default_plan
    from sscjak.shared.process_control import ProcessGroup, descendant_pids, wait_for_port

    assert os.geteuid() == 0, "mount namespaces and setpriv need root (CI runs as root)"
    started_at = time.monotonic()
    sandbox = Sandbox(layout)
    documented = documented_commands()
    folders = dict(list(demo_centre_folders().items())[:3])
    data_before = {name: tree_fingerprint(f) for name, f in folders.items()}
    fleet_port, control_port = free_port(), free_port()
    home = service_directory(layout / "coordinator" / "home")
    common = {
        "/opt/sscjak/venv/bin": str(VENV_BIN),
        "coordinator.example.org:9092": f"127.0.0.1:{fleet_port}",
        "coordinator.example.org": "127.0.0.1",
    }
    coordinator_map = {
        **common,
        "/var/lib/sscjak/coordinator": str(home),
        "0.0.0.0:9092": f"127.0.0.1:{fleet_port}",
    }

    def centre_map(name: str) -> dict[str, str]:
        centre = layout / "centres" / name
        return {
            **common,
            "/var/lib/sscjak/node": str(centre / "state"),
            "/srv/sscjak/data": str(folders[name]),
            "/etc/sscjak": str(centre / "etc"),
            "centre-lyon": name,
        }

    def container_map(name: str) -> dict[str, str]:
        centre = layout / "centres" / name
        return {
            "/var/lib/sscjak": str(centre / "state"),
            "/data": str(folders[name]),
            "/etc/sscjak": str(centre / "etc"),
            "coordinator:9092": f"127.0.0.1:{fleet_port}",
        }

    def state(name: str) -> Path:
        return layout / "centres" / name / "state"

    # set-up, with the commands of docs/deploy.md, as the service user
    run_documented(documented["sscjak-coordinator certs"], coordinator_map, sandbox, home)
    (home / "entries").mkdir()
    for name in folders:
        service_directory(state(name))
        run_documented(documented["sscjak-node validate"], centre_map(name), sandbox, state(name))
        run_documented(documented["sscjak-node keys"], centre_map(name), sandbox, state(name))
        shutil.copy(state(name) / "entry.toml", home / "entries" / f"{name}.toml")  # sent
        line = documented["sscjak-coordinator roster add"].replace("centre-lyon", name)
        run_documented(line, coordinator_map, sandbox, home)
    (home / "plan.toml").write_text(default_plan().canonical_toml, encoding="utf-8")
    for name in folders:
        etc = layout / "centres" / name / "etc"
        etc.mkdir()
        for sent in (home / "certs" / "ca.pem", home / "roster.toml", home / "plan.toml"):
            shutil.copy(sent, etc / sent.name)
            (etc / sent.name).chmod(0o644)
        approved = run_documented(
            documented["sscjak-node approve"], centre_map(name), sandbox, state(name), "yes\n"
        )
        assert f"Approved plan {default_plan().sha256}" in approved
    setup_seconds = time.monotonic() - started_at

    with ProcessGroup(tmp_path / "logs") as processes:
        try:
            argv, env = unit_process(
                "coordinator", coordinator_map, {"SSCJAK_CONTROL_PORT": str(control_port)}, sandbox
            )
            link = processes.start("sscjak-coordinator.service", argv, env)
            deadline = time.monotonic() + 120
            while "SuperLink running" not in link.log_tail() and time.monotonic() < deadline:
                assert link.process.poll() is None, link.log_tail()
                time.sleep(0.3)
            assert "registered 3 node key(s)" in link.log_tail()
            wait_for_port("127.0.0.1", fleet_port, 10)
            nodes = []
            for name, service in zip(folders, ["unit", "unit", "node-c"], strict=True):
                if service == "unit":  # sscjak-node.service's ExecStart
                    argv, env = unit_process("node", centre_map(name), {}, sandbox)
                else:  # the container's command line: compose.yaml's node-c, image CMD
                    argv, env = container_process(service, container_map(name), sandbox)
                assert f"--superlink 127.0.0.1:{fleet_port}" in " ".join(argv) or (
                    env["SSCJAK_SUPERLINK"] == f"127.0.0.1:{fleet_port}"
                )
                label = "sscjak-node.service" if service == "unit" else f"compose-{service}"
                nodes.append(processes.start(f"{label}-{name}", argv, env))
            for node, name in zip(nodes, folders, strict=True):
                deadline = time.monotonic() + 120
                while f"{name}: serving" not in node.log_tail():
                    assert node.process.poll() is None, node.log_tail()
                    assert time.monotonic() < deadline, node.log_tail()
                    time.sleep(0.3)
            printed = run_documented(
                documented["sscjak-coordinator run"], coordinator_map, sandbox, home
            )
            analysis_seconds = time.monotonic() - started_at - setup_seconds
            assert "nodes answered 3/3" in printed

            results = json.loads((home / "results.json").read_text(encoding="utf-8"))
            assert sorted(results["participants"]) == sorted(folders)
            assert (home / "report" / "report.html").is_file()
            simulated = tmp_path / "simulated.json"
            subprocess.run(
                [
                    str(VENV_BIN / "sscjak-coordinator"),
                    "simulate",
                    *map(str, folders.values()),
                    "--out",
                    str(simulated),
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
            provenance = {"participants", "attempts", "excluded_nodes", "software", "created"}
            reference = json.loads(simulated.read_text(encoding="utf-8"))
            assert {k: v for k, v in results.items() if k not in provenance} == {
                k: v for k, v in reference.items() if k not in provenance
            }
            for name in folders:
                history = run_documented(
                    documented["sscjak-node history"], centre_map(name), sandbox, state(name)
                )
                assert "Summaries released: 1" in history
                # the modes docs/deploy.md promises, owned by the service user
                for path, mode in {
                    state(name): 0o700,
                    state(name) / "node_x25519_key.pem": 0o600,
                    state(name) / "flower_auth_key": 0o600,
                    state(name) / "audit.jsonl": 0o600,
                }.items():
                    assert stat.S_IMODE(path.stat().st_mode) == mode, path.name
                    assert path.stat().st_uid == SERVICE_UID, path.name
                assert tree_fingerprint(folders[name]) == data_before[name], "data written"

            # systemctl stop with KillMode=mixed: SIGTERM to the main process only
            stop_seconds = []
            for service, role in [*((node, "node") for node in nodes), (link, "coordinator")]:
                children = descendant_pids(service.pid)
                assert children, f"{service.name} started no Flower process"
                began = time.monotonic()
                os.kill(service.pid, signal.SIGTERM)
                service.process.wait(timeout=stop_timeout_seconds(role))
                stop_seconds.append(time.monotonic() - began)
                assert service.process.returncode == 0, service.log_tail()
                time.sleep(0.5)
                assert [pid for pid in children if running(pid)] == [], service.name
            print(
                f"setup {setup_seconds:.1f} s, start + analysis {analysis_seconds:.1f} s, "
                f"stop {max(stop_seconds):.1f} s at most"
            )
        finally:
            print(processes.logs())


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
