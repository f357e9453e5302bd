"""The suppression list: addresses never handed to a provider again (SPEC 9).

Hard bounces and complaints of live keys add the address (``EventService``); an operator adds
and removes addresses through the admin API. Addresses compare case-insensitively: they are
stored in lower case.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import NotFoundError
from chalicelib.repositories.suppressions import NewSuppression, Suppression, SuppressionRepository
from chalicelib.services.paging import decode_cursor, next_cursor


@dataclass(frozen=True)
class SuppressionPage:
    suppressions: list[Suppression]
    next_cursor: str | None


def suppression_detail(reason: str) -> str:
    """The status_detail of a recipient not sent because its address is listed (``reason``)."""
    return f"suppressed: the address is on the suppression list ({reason})"


class SuppressionService:
    def __init__(self, repository: SuppressionRepository) -> None:
        self._repo = repository

    def listed(self, addresses: list[str]) -> dict[str, Suppression]:
        """The listed ones among ``addresses``, by lower-case address."""
        return self._repo.find_many(sorted({a.lower() for a in addresses}))

    def add(
        self,
        addresses: list[str],
        reason: str,
        *,
        email_id: str | None = None,
        detail: str | None = None,
    ) -> list[Suppression]:
        entries = [
            NewSuppression(address, reason, email_id, detail)
            for address in dict.fromkeys(a.lower() for a in addresses)
        ]
        listed = self._repo.add_many(entries)
        return [listed[e.address] for e in entries if e.address in listed]

    def remove(self, address: str) -> None:
        if not self._repo.delete(address.strip().lower()):
            raise NotFoundError(f"{address} is not on the suppression list")

    def page(self, *, address: str | None, cursor: str | None, limit: int) -> SuppressionPage:
        if address is not None:
            found = self._repo.find_many([address.strip().lower()])
            return SuppressionPage(list(found.values()), None)
        rows = self._repo.page(decode_cursor(cursor), limit + 1)
        return SuppressionPage(rows[:limit], next_cursor([r.address for r in rows], limit))
