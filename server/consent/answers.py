"""A consent answer, recorded (``POST /tp/v1/consent``, docs/privacy.md): the append-only log
entry and the visitor's current consent, and a withdrawal's erasure, as one unit of the
writer."""

from __future__ import annotations

from collections.abc import Callable

from .. import store
from ..store import Connection
from ..store.records import CATEGORIES


def record(
    visitor_id: str,
    granted: frozenset[str],
    *,
    method: str,
    revision: int,
    known: bool,
    now: int,
    key: bytes,
) -> Callable[[Connection], None]:
    """The writer unit that logs the answer of ``visitor_id`` (``known``: the browser's cookie
    named it, rather than a throwaway id for counting a refusal)."""

    def answer(conn: Connection) -> None:
        """Log the answer. One granting nothing from a visitor who had granted something is a
        withdrawal of consent: everything stored about them is erased (GDPR Art. 17(1)(b)),
        the log entries, this one included, kept under a pseudonym as proof
        (docs/privacy.md#erasure)."""
        withdrawal = not granted and known and store.visitor_exists(conn, visitor_id)
        store.record_consent(
            conn,
            visitor_id,
            at=now,
            revision=revision,
            granted=granted,
            denied=set(CATEGORIES) - granted,
            method=method,
        )
        if withdrawal:
            store.erase(conn, ("id", visitor_id), key=key, at=now, via="page")

    return answer
