"""``client.plans``: list, purchase, renew, cancel and un-cancel the account's support plan."""

from __future__ import annotations

import builtins
import logging
from typing import Any

from vpsbg_support import _constants as C
from vpsbg_support import _routes as R
from vpsbg_support._validate import (
    check_billing_cycle_purchase,
    check_billing_cycle_renew,
    check_text,
)
from vpsbg_support.errors import InvalidParameterError, UnprocessableEntityError
from vpsbg_support.models import Order, SupportPlan
from vpsbg_support.resources._base import AsyncResource, raw_twin, received_error

logger = logging.getLogger(C.LOGGER_NAME)


class AsyncPlans(AsyncResource):
    """Support plans. Every money action answers with an :class:`Order`.

    Purchase, renew and cancel are POSTs: they are never re-sent after an ambiguous failure
    (a timeout or reset once the request was sent, or a 5xx). Such a failure raises with
    ``request_sent=True``: check the account's orders before trying again.
    """

    @property
    def with_raw_response(self) -> AsyncPlansWithRawResponse:
        """The same calls, each answering a :class:`~vpsbg_support.responses.RawResponse`
        (status, headers, body, request id, retries) whose ``parse()`` is the usual result.

        ``raw = await client.plans.with_raw_response.renew(billing_cycle=1)``
        """
        return AsyncPlansWithRawResponse(self)

    async def list(self) -> builtins.list[SupportPlan]:
        """List the support plans on offer (and the account's current one, when the API says).

        Returns:
            The plans, in the order the API gave them.

        Raises:
            APIStatusError: a non-2xx answer (AuthenticationError, RateLimitError, ...).
            APIConnectionError: the API could not be reached.
            ResponseDecodeError: the answer could not be read.
        """
        response = await self._request(R.PLANS_LIST)
        return list(self._structure_page(response, SupportPlan).items)

    async def purchase(self, *, plan: str, billing_cycle: int) -> Order:
        """Buy a support plan. This creates an order (it costs money).

        Args:
            plan: the plan key, e.g. ``"professional"`` (see :meth:`list`).
            billing_cycle: months to pay for, 1 to 24.

        Returns:
            The Order VPSBG created.

        Raises:
            InvalidParameterError: a bad ``plan`` or ``billing_cycle``; nothing was sent.
            UnprocessableEntityError: the API rejected the input (``.errors`` per field).
            APIStatusError: any other non-2xx answer; a 5xx has ``request_sent=True``.
            APIConnectionError: the connection failed; when ``request_sent`` is True the order
                may exist: check before buying again.
        """
        check_text("plan", plan, minimum=1)
        cycle = check_billing_cycle_purchase(billing_cycle)
        response = await self._request(
            R.PLANS_PURCHASE, json_body={"plan": plan, "billing_cycle": cycle}
        )
        return self._structure(response, Order)

    async def renew(self, *, billing_cycle: int) -> Order:
        """Renew the account's support plan. This creates an order (it costs money).

        Args:
            billing_cycle: months to renew for: 1, 3, 6, 12 or 24.

        Returns:
            The renewal Order.

        Raises:
            InvalidParameterError: ``billing_cycle`` is not one of 1, 3, 6, 12, 24.
            UnprocessableEntityError: the API rejected the renewal.
            APIStatusError / APIConnectionError: as for :meth:`purchase`.
        """
        cycle = check_billing_cycle_renew(billing_cycle)
        response = await self._request(R.PLANS_RENEW, json_body={"billing_cycle": cycle})
        return self._structure(response, Order)

    async def cancel(self, *, reason: str | None = None, now: bool = False) -> Order | None:
        """Ask VPSBG to cancel the support plan, at the end of the period or ``now``.

        Args:
            reason: an optional free-text reason.
            now: cancel immediately instead of at the end of the paid period.

        Returns:
            The Order the API answered with, or None when it answered 204 No Content.

        Raises:
            InvalidParameterError: ``reason`` is not a string or ``now`` not a bool.
            APIStatusError / APIConnectionError: as for :meth:`purchase`.
        """
        if not isinstance(now, bool):
            raise InvalidParameterError("now", f"expected a bool, got {type(now).__name__}")
        body: dict[str, Any] = {"now": now}
        if reason is not None:
            body["reason"] = check_text("reason", reason, minimum=1)
        response = await self._request(R.PLANS_CANCEL, json_body=body)
        return self._structure_optional(response, Order)

    async def undo_cancel(self) -> Order | None:
        """Withdraw a pending cancellation of the support plan.

        The DELETE is retried after a failure that may have reached the server (it is
        idempotent). When such a retry is told "no pending cancellation" (422), the attempt
        before, whose answer was lost, most likely withdrew it: no cancellation is pending, the
        state asked for, so it returns None (logged at WARNING) instead of raising. (The HTTP
        library's own immediate re-send after a dropped connection is not one of the client's
        retries: a 422 after it alone is raised.)

        Returns:
            The Order the API answered with, or None when it answered 204 No Content or when a
            retry found the cancellation already withdrawn.

        Raises:
            UnprocessableEntityError: there is no pending cancellation (as the API reports it).
            APIStatusError / APIConnectionError: any other failure.
        """
        try:
            response = await self._request(R.PLANS_UNDO_CANCEL)
        except UnprocessableEntityError as exc:
            if not exc.replayed:
                raise
            received_error(exc)  # with_raw_response.undo_cancel shows this answer
            logger.warning(
                "undo_cancel: a retry was told %r: no cancellation is pending, as asked; the"
                " earlier attempt, whose answer was lost, most likely withdrew it",
                exc.message,
            )
            return None
        return self._structure_optional(response, Order)


class AsyncPlansWithRawResponse:
    """``client.plans.with_raw_response``: every plan call, answering a RawResponse whose
    ``parse()`` is what the plain call returns."""

    def __init__(self, plans: AsyncPlans) -> None:
        self.list = raw_twin(plans.list)
        self.purchase = raw_twin(plans.purchase)
        self.renew = raw_twin(plans.renew)
        self.cancel = raw_twin(plans.cancel)
        self.undo_cancel = raw_twin(plans.undo_cancel)
