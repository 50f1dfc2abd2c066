"""Correlation ids: one id per booking request, carried from the API through SNS into every consumer's log lines.

A caller may send its own id in `X-Correlation-Id` (a mobile app that retries, a support tool); the API keeps it only
when it is well formed and otherwise makes a new one. Anything else would put caller-chosen text into every log line
and into a response header (log and header injection), so a malformed id is never reflected, not even in the log.

This module has no relative imports: the Lambda consumers import it from their own assets (stacks/selfnest
packages the `selfnest_api` folder into them), so the API and the consumers agree on what a valid id is.
"""

from __future__ import annotations

import re
import uuid

HEADER = "X-Correlation-Id"
# The SNS message attribute (and, with raw message delivery, the SQS message attribute) that carries the id.
MESSAGE_ATTRIBUTE = "correlation_id"
# Letters, digits and . _ : - only, 8 to 128 of them: a UUID, a ULID or an X-Ray trace id fit; spaces, quotes,
# control characters and anything long enough to flood a log do not.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# The X-Ray trace id inside an `X-Amzn-Trace-Id` header (which the ALB adds or extends): Root=1-<8 hex>-<24 hex>.
TRACE_ROOT = re.compile(r"(?:^|;)\s*Root=(1-[0-9a-f]{8}-[0-9a-f]{24})(?:;|$)")
MAX_TRACE_HEADER_LENGTH = 256


def is_well_formed(candidate: str | None) -> bool:
    return candidate is not None and WELL_FORMED.fullmatch(candidate) is not None


def accept_or_new(candidate: str | None) -> tuple[str, bool]:
    """The inbound id when it is well formed, else a new one; and whether a malformed one was replaced."""
    if is_well_formed(candidate):
        assert candidate is not None
        return candidate, False
    return str(uuid.uuid4()), candidate is not None


def trace_root(header: str | None) -> str | None:
    """The X-Ray trace id (`1-…-…`) of an `X-Amzn-Trace-Id` header, or None when there is none or it is malformed."""
    if not header or len(header) > MAX_TRACE_HEADER_LENGTH:
        return None
    found = TRACE_ROOT.search(header)
    return found.group(1) if found else None
