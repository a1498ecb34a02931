"""The node's Flower ClientApp: Flower ``Message`` in, sscjak payload out, never a crash.

The coordinator's analysis request travels as the only record of the message content
(:mod:`sscjak.shared.flower_payload`: one ``ConfigRecord`` holding the flat payload of
:mod:`sscjak.shared.protocol`). The handler turns the record back into a plain
``dict`` and passes it to :func:`sscjak.node.guard.analysis_handler.handle_analysis_request`,
which validates it strictly, applies every node guard, audit-logs and answers a masked
summary or a refusal; the answer goes back as the same kind of record.

A Flower message that is not of that shape (other records, several records, an array
record, a ``train`` message, …) is answered with a refusal payload too — by the same
handler, which refuses an empty request as malformed and logs it — so a malformed
message never crashes the node and never goes unanswered.

This module is loaded only from the locally installed ``sscjak`` package by
:class:`sscjak.node.flower.supernode_process.LocalClientAppRunner`; an app bundle pushed by the
coordinator is never imported.
"""

from __future__ import annotations

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp

from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.node_context import NodeContext
from sscjak.shared.flower_payload import (
    PING_REPLY_KIND,
    message_content,
    payload_from_message,
)
from sscjak.shared.protocol import Payload


def reply_to_analysis_message(message: Message, node: NodeContext) -> Message:
    """Answer one analysis message for ``node``: the reply or refusal, as a Flower reply."""
    payload: Payload = handle_analysis_request(payload_from_message(message), node)
    return Message(message_content(payload), reply_to=message)


def reply_to_ping(message: Message, node: NodeContext) -> Message:
    """Answer a liveness probe with the node's name; reads no data, logs nothing."""
    return Message(message_content({"kind": PING_REPLY_KIND, "node": node.name}), reply_to=message)


def build_client_app(node: NodeContext) -> ClientApp:
    """The ClientApp of ``node``: ``query`` → analysis, ``query.ping`` → liveness probe."""
    app = ClientApp()

    @app.query()
    def analysis(message: Message, context: Context) -> Message:
        return reply_to_analysis_message(message, node)

    @app.query("ping")
    def ping(message: Message, context: Context) -> Message:
        return reply_to_ping(message, node)

    return app


def answer_message(
    app: ClientApp, node: NodeContext, message: Message, context: Context
) -> Message:
    """Run ``app`` on ``message``; any message it cannot dispatch gets a refusal reply."""
    try:
        return app(message, context)
    except Exception:
        # Not a message type the app handles (e.g. "train"): refuse through the handler
        # so the refusal is audit-logged like any other outgoing message.
        payload = handle_analysis_request({}, node)
        return Message(message_content(payload), reply_to=message)


def answer_payload_in_process(payload: Payload, node: NodeContext) -> Payload:
    """Answer ``payload`` through the node's ClientApp without any network (``simulate``).

    The payload is wrapped in a Flower ``Message`` exactly as the coordinator's transport
    wraps it, handed to :func:`build_client_app`'s app, and the reply unwrapped: the same
    code path as a deployed node, minus the SuperLink. Flower stamps messages with the
    running task's identity; outside a Flower task a neutral one is set once.
    """
    from flwr.supercore.task_identity import TaskIdentity

    for attribute in ("run_id", "node_id", "task_id"):
        try:
            getattr(TaskIdentity, attribute)
        except RuntimeError:
            setattr(TaskIdentity, attribute, 0)
    message = Message(message_content(payload), dst_node_id=0, message_type="query")
    context = Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={})
    reply = answer_message(build_client_app(node), node, message, context)
    return payload_from_message(reply)
