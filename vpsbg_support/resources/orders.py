"""``client.orders``: list and read the account's orders, and wait until one is paid."""

from __future__ import annotations

from collections.abc import Iterable

from vpsbg_support import _constants as C
from vpsbg_support import _routes as R
from vpsbg_support._polling import Backoff, poll
from vpsbg_support._validate import check_id, check_int, check_seconds, check_text
from vpsbg_support.errors import InvalidParameterError, OrderCancelledError
from vpsbg_support.models import Order, Page
from vpsbg_support.resources._base import AsyncResource, raw_twin

#: The status that ends every wait: a cancelled order is never paid.
CANCELLED = "cancelled"


class AsyncOrders(AsyncResource):
    """Orders of the account: what purchasing or renewing a support plan created.

    Reads are retried on transient failures like every GET.
    """

    @property
    def with_raw_response(self) -> AsyncOrdersWithRawResponse:
        """The same calls, each answering a :class:`~vpsbg_support.responses.RawResponse`
        (status, headers, body, request id, retries) whose ``parse()`` is the usual result.

        ``raw = await client.orders.with_raw_response.get(7801)``
        """
        return AsyncOrdersWithRawResponse(self)

    async def list(
        self,
        page: int | None = None,
        per_page: int | None = None,
        *,
        status: str | Iterable[str] | None = None,
    ) -> Page[Order]:
        """One page of orders.

        Args:
            page: the page number, from 1 (the API's default when None).
            per_page: orders per page (the API's default when None).
            status: only orders in these statuses (sent as ``filter[status]``, comma-separated);
                None leaves the filter to the API, whose documented default is
                ``pending_payment,paid``.

        Returns:
            A Page of Orders (list items may lack ``invoices``, ``services``, ``payment_method``).

        Raises:
            InvalidParameterError: ``page``/``per_page`` is not a positive integer, or a status
                is empty or holds a comma.
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        params: dict[str, str | int] = {}
        if page is not None:
            params["page"] = check_int("page", page)
        if per_page is not None:
            params["per_page"] = check_int("per_page", per_page)
        if status is not None:
            params["filter[status]"] = _status_filter(status)
        response = await self._request(R.ORDERS_LIST, params=params)
        return self._structure_page(response, Order)

    async def get(self, order_id: int | str) -> Order:
        """One order, with its invoices and service lines.

        Args:
            order_id: the order's id.

        Returns:
            The Order.

        Raises:
            InvalidParameterError: ``order_id`` is not a positive integer.
            NotFoundError: no such order.
            APIStatusError / APIConnectionError / ResponseDecodeError: the call failed.
        """
        oid = check_id("order_id", order_id)
        response = await self._request(R.ORDERS_GET, path_params={"order_id": oid})
        return self._structure(response, Order)

    async def wait(
        self,
        order_id: int | str,
        *,
        until: Iterable[str] = ("paid",),
        timeout: float | None = 600.0,
        interval: float = C.ORDER_WAIT_INTERVAL,
        max_interval: float | None = None,
    ) -> Order:
        """Poll an order until its status is one of ``until``.

        ``order = await client.orders.wait(order.id, until={"paid"}, timeout=600)``

        The first read is immediate; then the pause starts at ``interval`` and grows (up to
        ``max_interval``, by default four times ``interval``) while the status stays the same.
        A rate limit waits for its ``Retry-After``; connection failures and 5xx answers are
        logged and polled again. Every read goes through the client's rate limiter.

        Args:
            order_id: the order's id.
            until: the statuses to wait for (e.g. ``{"paid"}``, or ``{"paid", "processing"}``).
            timeout: seconds to wait in all; None waits for as long as it takes.
            interval: the shortest pause between reads, in seconds.
            max_interval: the longest pause the backoff grows to, in seconds.

        Returns:
            The Order, in one of the ``until`` statuses.

        Raises:
            OrderCancelledError: the order was cancelled (unless ``"cancelled"`` is in
                ``until``); ``.order`` holds it.
            WaitTimeoutError: ``timeout`` passed first; ``.last`` holds the Order last read.
            InvalidParameterError: a bad id, status set, or number of seconds.
            NotFoundError: no such order.
            APIStatusError / ResponseDecodeError: another failure that polling cannot ride out.
        """
        oid = check_id("order_id", order_id)
        wanted = frozenset(
            check_text("until", s, minimum=1)
            for s in ([until] if isinstance(until, str) else until)
        )
        if not wanted:
            raise InvalidParameterError("until", "give at least one status to wait for")
        if timeout is not None:
            timeout = check_seconds("timeout", timeout)
        backoff = Backoff.checked(interval, max_interval)

        def check(order: Order) -> Order | None:
            if order.status in wanted:
                return order
            if order.status == CANCELLED:
                raise OrderCancelledError(f"order {order.id} was cancelled", order=order)
            return None

        return await poll(
            lambda: self.get(oid),
            check,
            key=lambda order: order.status,
            backoff=backoff,
            timeout=timeout,
            what=f"waiting for order {oid} to be {'/'.join(sorted(wanted))}",
        )


class AsyncOrdersWithRawResponse:
    """``client.orders.with_raw_response``: every order call, answering a RawResponse whose
    ``parse()`` is what the plain call returns (for ``wait``: the last read)."""

    def __init__(self, orders: AsyncOrders) -> None:
        self.list = raw_twin(orders.list)
        self.get = raw_twin(orders.get)
        self.wait = raw_twin(orders.wait)


def _status_filter(status: str | Iterable[str]) -> str:
    values = [status] if isinstance(status, str) else list(status)
    if not values:
        raise InvalidParameterError("status", "give at least one status")
    for value in values:
        check_text("status", value, minimum=1)
        if "," in value:
            raise InvalidParameterError("status", f"a status cannot hold a comma: {value!r}")
    return ",".join(values)
