"""The SuperNode's loopback Runtime API hands tasks only to the holder of this start's secret.

Attack: any local user of the centre's host connects to the SuperNode's Runtime API on
127.0.0.1 and calls ``AcquireTask``; the task token it gets lets it pull the
coordinator's message and push an answer of its choosing, in the centre's name.

Defence: ``sscjak-node serve`` writes a fresh random secret (mode 0600, in the node's
0700 state directory) at every start and gives its path to ``flower-supernode
--superexec-auth-secret-file`` (Flower's SuperExec authentication: ``AcquireTask``
must carry an HMAC of the request under that secret, ``flwr.supercore.auth``); the
local runner signs with it. The other Runtime API calls need the task token that only
``AcquireTask`` hands out. The secret is never on a command line.

These tests start a real ``flower-supernode`` (its SuperLink address is an unused
loopback port: it keeps retrying, and its Runtime API is served meanwhile).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ports import free_port

from sscjak.node.flower.supernode_process import (
    CLIENT_APP_TASK_TYPE,
    LocalClientAppRunner,
    SuperNodeSettings,
    supernode_command,
    wait_for_runtime_api,
    write_runtime_secret,
)
from sscjak.shared.flower_environment import flower_environment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def supernode(tmp_path_factory) -> Iterator[tuple[SuperNodeSettings, subprocess.Popen]]:
    state = tmp_path_factory.mktemp("node-state")
    state.chmod(0o700)
    flwr_home = state / "flwr_home"
    flwr_home.mkdir()
    settings = SuperNodeSettings(
        superlink=f"127.0.0.1:{free_port()}",  # nothing there: the node keeps retrying
        runtime_port=free_port(),
        insecure=True,
        runtime_secret_file=write_runtime_secret(flwr_home),
    )
    log = (state / "supernode.log").open("wb")
    process = subprocess.Popen(
        supernode_command(settings),
        env=flower_environment(flwr_home),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_runtime_api(settings.runtime_api_address)
        yield settings, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def acquire_task(address: str, interceptors: list) -> object:
    """One ``AcquireTask`` call through Flower's Runtime client, without retries.

    Flower's default HTTP retry policy answers a 401 by sending SIGINT to its own
    process (``flwr.supercore.retry.http_retry``): here every error is raised instead.
    """
    from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    invoker = make_simple_http_retry_invoker()
    invoker.should_giveup = lambda error: True
    client = RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec"), *interceptors],
        retry_invoker=invoker,
    )
    try:
        return client.AcquireTask(AcquireTaskRequest(supported_task_types=[CLIENT_APP_TASK_TYPE]))
    finally:
        client.close()


def test_a_local_client_without_the_secret_is_refused(supernode):
    settings, process = supernode
    with pytest.raises(httpx.HTTPStatusError) as refused:
        acquire_task(settings.runtime_api_address, [])
    assert refused.value.response.status_code == 401
    assert process.poll() is None, "the SuperNode keeps running"


def test_a_client_with_another_secret_is_refused(supernode):
    from flwr.supercore.interceptors import SuperExecAuthHttpInterceptor

    settings, _ = supernode
    forged = SuperExecAuthHttpInterceptor(
        master_secret=b"0" * 64, protected_methods={"/flwr.proto.Runtime/AcquireTask"}
    )
    with pytest.raises(httpx.HTTPStatusError) as refused:
        acquire_task(settings.runtime_api_address, [forged])
    assert refused.value.response.status_code == 401


def test_the_local_runner_with_the_secret_is_answered(supernode):
    settings, _ = supernode
    runner = LocalClientAppRunner(
        settings.runtime_api_address,
        lambda message, context: message,
        runtime_secret=settings.runtime_secret_file.read_bytes(),
    )
    from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611

    client = runner.task_queue_client()
    try:
        for _ in range(3):  # every request carries a fresh nonce: repeated calls work
            response = client.AcquireTask(
                AcquireTaskRequest(supported_task_types=[CLIENT_APP_TASK_TYPE])
            )
            assert not response.HasField("task"), "no run yet: answered, with no task"
    finally:
        client.close()


def test_the_secret_is_private_and_never_on_the_command_line(supernode):
    settings, process = supernode
    secret_file = settings.runtime_secret_file
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_bytes()
    assert len(secret) >= 32
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    assert secret not in command_line
    assert b"--superexec-auth-secret-file\0" + str(secret_file).encode() in command_line


def test_every_start_writes_a_fresh_secret_with_mode_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        first = write_runtime_secret(tmp_path)
        secret = first.read_bytes()
        first.chmod(0o644)
        second = write_runtime_secret(tmp_path)
    finally:
        os.umask(previous)
    assert second == first
    assert second.read_bytes() != secret
    assert stat.S_IMODE(second.stat().st_mode) == 0o600


def test_the_command_names_the_secret_file_only_when_given_one():
    settings = SuperNodeSettings(
        superlink="h:1", runtime_port=2, insecure=True, runtime_secret_file=Path("/s/secret")
    )
    command = supernode_command(settings)
    index = command.index("--superexec-auth-secret-file")
    assert command[index + 1] == "/s/secret"
    plain = SuperNodeSettings(superlink="h:1", runtime_port=2, insecure=True)
    assert "--superexec-auth-secret-file" not in supernode_command(plain)
