"""A page of a list endpoint, whether the API answered with a bare array or a paginated envelope.

Nothing in a page is required: a bare JSON array gives a page whose paging fields are all ``None``.
Unknown envelope keys (and unknown ``links``/``meta`` keys, under ``"links"``/``"meta"``) are kept
in ``extra``, exactly as received.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs

from vpsbg_support.models._wire import JSONModel

__all__ = ["Page"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Page(JSONModel, Generic[T]):
    """One page of results; iterating it iterates its items.

    Attributes:
        items: the items on this page, in the order the API sent them.
        current_page: this page's number (``meta.current_page``), if known.
        last_page: the last page's number (``meta.last_page``), if known.
        per_page: page size (``meta.per_page``), if known.
        total: total number of items across pages (``meta.total``), if known.
        next_url: URL of the next page (``links.next``), if any.
        prev_url: URL of the previous page (``links.prev``), if any.
        extra: envelope keys the library does not know, exactly as received.
    """

    items: tuple[T, ...] = ()
    current_page: int | None = None
    last_page: int | None = None
    per_page: int | None = None
    total: int | None = None
    next_url: str | None = None
    prev_url: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def has_next(self) -> bool:
        """Whether another page follows this one.

        Returns:
            True when ``next_url`` is set, or ``current_page < last_page``.
        """
        if self.next_url is not None:
            return True
        if self.current_page is not None and self.last_page is not None:
            return self.current_page < self.last_page
        return False

    def __iter__(self) -> Iterator[T]:
        """Iterate over the items on this page.

        Returns:
            An iterator over ``items``.
        """
        return iter(self.items)

    def __len__(self) -> int:
        """Count the items on this page.

        Returns:
            The number of items on this page (not the total across pages).
        """
        return len(self.items)
