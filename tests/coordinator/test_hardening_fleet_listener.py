"""The centre-facing listener caps request bodies and in-flight requests before Flower.

Attack: anyone who can reach the Fleet address, without a node key, sends a body of
hundreds of MiB (declared, chunked, or with a Content-Length that lies); Flower's
protobuf middleware reads and parses the whole body before node authentication, so
the SuperLink's memory grows with it. Or it opens many requests at once.

Defence (``FleetOnlyListener``): a declared length above the cap is answered 413
without calling Flower; the bytes actually received are counted, and the stream is
cut with 413 as soon as they pass the cap; requests beyond the concurrency bound are
answered 503 at once. These tests drive the ASGI wrapper directly with a recording
fake app; ``test_hardening_superlink_process.py`` does the same over real TLS sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from sscjak.coordinator.federation.superlink_process import (
    FLEET_MAX_BODY_BYTES,
    FLEET_MAX_CONCURRENT_REQUESTS,
    FleetOnlyListener,
)

MiB = 1024 * 1024


class RecordingApp:
    """A stand-in for Flower's app: reads the whole body, answers 200 with its length."""

    def __init__(self, *, swallow_errors: bool = False, gate: asyncio.Event | None = None):
        self.calls = 0
        self.bytes_seen = 0
        self.swallow_errors = swallow_errors
        self.gate = gate

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        try:
            while True:
                message = await receive()
                self.bytes_seen += len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    break
        except Exception:
            if not self.swallow_errors:
                raise
            # Like an error-translating middleware: try to answer 500 itself.
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"internal"})
            return
        body = str(self.bytes_seen).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def http_scope(path: str = "/v1/fleet/push-object", headers: dict[str, str] | None = None):
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }


def chunked_receive(chunk: bytes, total: int | None) -> tuple[Callable[[], Awaitable], list]:
    """A ``receive`` that yields ``chunk`` until ``total`` bytes (``None``: forever)."""
    pulled: list[int] = []

    async def receive():
        sent = sum(pulled)
        if total is not None and sent >= total:
            return {"type": "http.disconnect"}
        size = len(chunk) if total is None else min(len(chunk), total - sent)
        pulled.append(size)
        more = total is None or sent + size < total
        return {"type": "http.request", "body": chunk[:size], "more_body": more}

    return receive, pulled


async def call(listener, scope, receive) -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    await listener(scope, receive, send)
    return sent


def status_of(sent: list[dict]) -> list[int]:
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


def test_the_cap_leaves_room_for_flower_chunks_and_is_far_below_flower_limits():
    from flwr.common.constant import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
    from flwr.supercore.constant import MAX_PROTOBUF_STREAM_MESSAGE_LENGTH

    assert FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE < FLEET_MAX_BODY_BYTES <= 16 * MiB
    assert FLEET_MAX_BODY_BYTES < MAX_PROTOBUF_STREAM_MESSAGE_LENGTH // 100


def test_a_declared_body_above_the_cap_gets_413_and_never_reaches_flower():
    app = RecordingApp()
    receive, pulled = chunked_receive(b"x" * MiB, 300 * MiB)
    scope = http_scope(headers={"content-length": str(300 * MiB)})
    sent = asyncio.run(call(FleetOnlyListener(app), scope, receive))
    assert status_of(sent) == [413]
    assert app.calls == 0
    assert pulled == [], "not one body byte was read"
    headers = dict(sent[0]["headers"])
    assert headers[b"connection"] == b"close"


@pytest.mark.parametrize("declared", [None, "100"], ids=["chunked", "lying-content-length"])
@pytest.mark.parametrize("swallow_errors", [False, True], ids=["app-raises", "app-answers-500"])
def test_a_streamed_body_is_cut_with_413_once_it_passes_the_cap(declared, swallow_errors):
    app = RecordingApp(swallow_errors=swallow_errors)
    receive, pulled = chunked_receive(b"x" * MiB, 8 * FLEET_MAX_BODY_BYTES)
    headers = {} if declared is None else {"content-length": declared}
    sent = asyncio.run(call(FleetOnlyListener(app), http_scope(headers=headers), receive))
    assert status_of(sent) == [413], "exactly one response, and it is 413"
    assert app.calls == 1
    assert app.bytes_seen <= FLEET_MAX_BODY_BYTES
    assert sum(pulled) <= FLEET_MAX_BODY_BYTES + MiB, "reading stopped right after the cap"


def test_a_body_at_the_cap_passes_untouched():
    app = RecordingApp()
    receive, _ = chunked_receive(b"y" * MiB, FLEET_MAX_BODY_BYTES)
    scope = http_scope(headers={"content-length": str(FLEET_MAX_BODY_BYTES)})
    sent = asyncio.run(call(FleetOnlyListener(app), scope, receive))
    assert status_of(sent) == [200]
    assert sent[-1]["body"] == str(FLEET_MAX_BODY_BYTES).encode()


@pytest.mark.parametrize("value", ["abc", "-1", "1, 2"])
def test_a_malformed_content_length_is_refused(value):
    app = RecordingApp()
    receive, _ = chunked_receive(b"z", 1)
    sent = asyncio.run(
        call(FleetOnlyListener(app), http_scope(headers={"content-length": value}), receive)
    )
    assert status_of(sent) == [400]
    assert app.calls == 0


def test_requests_beyond_the_concurrency_bound_get_503_and_the_slots_come_back():
    assert 4 <= FLEET_MAX_CONCURRENT_REQUESTS <= 256

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        gate = asyncio.Event()
        app = RecordingApp(gate=gate)
        listener = FleetOnlyListener(app, max_concurrent_requests=2)

        def one_call():
            receive, _ = chunked_receive(b"a", 1)
            return asyncio.create_task(call(listener, http_scope(), receive))

        held = [one_call(), one_call()]
        await asyncio.sleep(0.05)  # both are inside the app, waiting on the gate
        refused = status_of(await asyncio.wait_for(one_call(), timeout=5))
        gate.set()
        finished = [s for task in held for s in status_of(await task)]
        again = status_of(await asyncio.wait_for(one_call(), timeout=5))
        return refused, finished, again

    refused, finished, again = asyncio.run(scenario())
    assert refused == [503]
    assert finished == [200, 200]
    assert again == [200]


def test_paths_outside_the_fleet_api_are_still_404_before_any_body_check():
    app = RecordingApp()
    receive, _ = chunked_receive(b"x", 1)
    scope = http_scope("/v1/control/start-run", {"content-length": str(300 * MiB)})
    sent = asyncio.run(call(FleetOnlyListener(app), scope, receive))
    assert status_of(sent) == [404]
    assert app.calls == 0


def test_a_body_that_trickles_in_is_cut_with_408_and_frees_its_slot():
    async def scenario() -> tuple[list[int], list[int], float]:
        app = RecordingApp()
        listener = FleetOnlyListener(app, max_concurrent_requests=1, body_timeout=0.3)

        async def trickle():  # one byte, then nothing for a long time
            await asyncio.sleep(0)
            if not trickle.sent:
                trickle.sent = True
                return {"type": "http.request", "body": b"x", "more_body": True}
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}

        trickle.sent = False
        loop = asyncio.get_running_loop()
        started = loop.time()
        slow = status_of(await asyncio.wait_for(call(listener, http_scope(), trickle), 10))
        elapsed = loop.time() - started
        receive, _ = chunked_receive(b"a", 1)
        after = status_of(await asyncio.wait_for(call(listener, http_scope(), receive), 5))
        return slow, after, elapsed

    slow, after, elapsed = asyncio.run(scenario())
    assert slow == [408]
    assert elapsed < 5
    assert after == [200], "the slot is free again"


def test_no_deadline_once_the_body_is_complete():
    """An app that, after the body, waits on ``receive`` (for a disconnect) while it
    answers slowly is not cut: the deadline covers the body only."""

    async def slow_answer(scope, receive, send):
        message = await receive()
        assert not message.get("more_body")
        waiting = asyncio.create_task(receive())  # like a disconnect listener
        await asyncio.sleep(0.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})
        waiting.cancel()

    async def receive_then_wait():
        if not receive_then_wait.done:
            receive_then_wait.done = True
            return {"type": "http.request", "body": b"x", "more_body": False}
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    receive_then_wait.done = False
    listener = FleetOnlyListener(slow_answer, body_timeout=0.2)
    sent = asyncio.run(call(listener, http_scope(), receive_then_wait))
    assert status_of(sent) == [200]
    assert sent[-1]["body"] == b"late"
