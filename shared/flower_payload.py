"""How an sscjak protocol payload rides in a Flower ``Message`` (both directions).

The content of every sscjak message is exactly one ``ConfigRecord`` named
:data:`PAYLOAD_RECORD` whose items are the flat payload of :mod:`sscjak.shared.protocol`
(``str``, ``int``, ``bytes`` and ``list[str]`` values are ConfigRecord values as they
are). Decoding is deliberately dumb: it only unwraps the record; the strict validation
is :mod:`sscjak.shared.protocol`'s. Shared by the node's ClientApp and the
coordinator's ServerApp so both sides agree on the wrapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flwr.app import ConfigRecord, Message, RecordDict

#: Name of the one ConfigRecord carrying the sscjak payload, both ways.
PAYLOAD_RECORD = "sscjak"
#: Message type of an analysis request (Flower "query" category).
ANALYSIS_MESSAGE_TYPE = "query"
#: Message type of a liveness probe (the bare round of the benchmark): no data touched.
PING_MESSAGE_TYPE = "query.ping"
#: Kind of the ping answer.
PING_REPLY_KIND = "sscjak.ping-reply/1"


def payload_from_message(message: Message) -> dict[str, Any]:
    """The payload of ``message``, or ``{}`` when the content is not exactly one
    ConfigRecord named :data:`PAYLOAD_RECORD` (an error reply included). Never raises."""
    try:
        if message.has_error() or not message.has_content():
            return {}
        content = message.content
        if list(content.keys()) != [PAYLOAD_RECORD]:
            return {}
        record = content[PAYLOAD_RECORD]
        if not isinstance(record, ConfigRecord):
            return {}
        return {str(key): value for key, value in record.items()}
    except Exception:  # whatever arrives, the caller gets a plain dict to validate
        return {}


def message_content(payload: Mapping[str, Any]) -> RecordDict:
    """``payload`` as Flower message content (one ConfigRecord)."""
    return RecordDict({PAYLOAD_RECORD: ConfigRecord(dict(payload))})
