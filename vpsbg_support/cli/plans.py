"""``vpsbg-support plans ...``: list, purchase, renew, cancel, undo-cancel; asks before money."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from vpsbg_support import AsyncClient
from vpsbg_support import _constants as C
from vpsbg_support.cli._app import EXIT_ABORTED, EXIT_OK, EXIT_USAGE, CLIExit, Output
from vpsbg_support.cli._format import as_json, table
from vpsbg_support.cli._options import Commands, positive_int
from vpsbg_support.errors import VPSBGError
from vpsbg_support.models import Order, SupportPlan

COSTS_MONEY = "This creates an order that costs money."
#: The plans list's status of the account's own plan, most telling first (renew buys it again).
ACCOUNT_PLAN_STATUSES = ("active", "cancel_requested")


def currency(item: SupportPlan | Order) -> str:
    """The currency of a plan's or an order's amounts: the API's ``currency`` when it sends one
    (its docs name none), else ``DEFAULT_CURRENCY``."""
    named = item.extra.get("currency")
    return named.strip() if isinstance(named, str) and named.strip() else C.DEFAULT_CURRENCY


def money(amount: Decimal | None, unit: str) -> str:
    """An amount with its currency, e.g. ``25.00 EUR`` (``-`` when the API gave none)."""
    return "-" if amount is None else f"{amount:.2f} {unit}"


async def price_of(client: AsyncClient, plan_key: str | None, months: int) -> str:
    """What ``months`` of a plan cost, from the plans list, for the question before buying.

    Args:
        client: the client.
        plan_key: the plan to buy, or None for the account's own plan (renew).
        months: the billing cycle.

    Returns:
        One sentence: the price with and without VAT, or why it is unknown.
    """
    try:
        plans = await client.plans.list()
    except VPSBGError:
        return "Price unknown: the plans could not be listed."
    if plan_key is None:
        ranked = [p for s in ACCOUNT_PLAN_STATUSES for p in plans if p.status == s]
        found = ranked[0] if ranked else None
    else:
        found = next((p for p in plans if p.key == plan_key), None)
    if found is None or found.price is None:
        return "Price unknown: the plans list does not give it."
    unit = currency(found)
    total = money(found.price * months, unit)
    with_vat = (
        f" ({money(found.price_with_vat * months, unit)} with VAT)"
        if found.price_with_vat is not None
        else ""
    )
    name = found.name or found.key
    return (
        f"Price: {total}{with_vat}: {name}, {months} x {money(found.price, unit)} a month,"
        " before any promo."
    )


async def confirm(
    args: argparse.Namespace,
    action: str,
    consequence: str,
    price: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Ask before an action on the account's plan, unless ``--yes``.

    Args:
        args: the parsed arguments (``yes``).
        action: what is about to be done, e.g. "Renew the support plan for 3 month(s)".
        consequence: what it means for the account, in one sentence.
        price: looks up what it costs, shown in the question (only asked when asking).

    Raises:
        CLIExit: declined (1: nothing was sent), or no terminal to ask on (2: pass ``--yes``).
    """
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CLIExit(f"{action}: pass --yes to confirm (no terminal to ask on)", EXIT_USAGE)
    cost = f" {await price()}" if price is not None else ""
    sys.stderr.write(f"{action}.{cost} {consequence} Proceed? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CLIExit("aborted, nothing was sent", EXIT_ABORTED)


def order_text(order: Order | None, done: str) -> str:
    """One line for an order the API answered with (or ``done.`` when it sent none)."""
    if order is None:
        return f"{done}."
    unit = currency(order)
    amount = f"{money(order.amount, unit)} ({money(order.amount_with_vat, unit)} with VAT)"
    return f"{done}: order {order.id} ({order.type or 'order'}), {amount}, status {order.status}."


def _plans_text(plans: Sequence[SupportPlan]) -> str:
    rows = [("PLAN", "NAME", "PRICE/MONTH", "STATUS")]
    rows += [(p.key, p.name or "-", money(p.price, currency(p)), p.status or "-") for p in plans]
    return table(rows)


async def _list(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    plans = await client.plans.list()
    out.emit(as_json(plans), lambda: _plans_text(plans))
    return EXIT_OK


async def _purchase(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    await confirm(
        args,
        f"Purchase support plan {args.plan!r} for {args.billing_cycle} month(s)",
        COSTS_MONEY,
        lambda: price_of(client, args.plan, args.billing_cycle),
    )
    order = await client.plans.purchase(plan=args.plan, billing_cycle=args.billing_cycle)
    out.emit(as_json(order), lambda: order_text(order, "Purchased"))
    return EXIT_OK


async def _renew(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    await confirm(
        args,
        f"Renew the support plan for {args.billing_cycle} month(s)",
        COSTS_MONEY,
        lambda: price_of(client, None, args.billing_cycle),
    )
    order = await client.plans.renew(billing_cycle=args.billing_cycle)
    out.emit(as_json(order), lambda: order_text(order, "Renewed"))
    return EXIT_OK


async def _cancel(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    if args.now:
        await confirm(
            args,
            "Cancel the support plan now",
            "The plan ends at once, not at the end of the paid period.",
        )
    else:
        await confirm(
            args,
            "Cancel the support plan at the end of the paid period",
            "The plan stays until the paid period ends, then ends.",
        )
    order = await client.plans.cancel(reason=args.reason, now=args.now)
    out.emit(as_json(order), lambda: order_text(order, "Cancellation requested"))
    return EXIT_OK


async def _undo_cancel(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    order = await client.plans.undo_cancel()
    out.emit(as_json(order), lambda: order_text(order, "Cancellation withdrawn"))
    return EXIT_OK


def register(commands: Commands) -> None:
    """Add the ``plans`` group and its actions."""
    plans = commands.group(
        "plans", "list, purchase, renew, cancel, undo-cancel", dest="plans_command"
    )
    plans.add("list", _list, "list the support plans")
    purchase = plans.add("purchase", _purchase, "buy a support plan (costs money)")
    purchase.add_argument("plan", help="plan key, e.g. professional")
    purchase.add_argument("--billing-cycle", type=positive_int, required=True, help="months")
    renew = plans.add("renew", _renew, "renew the support plan (costs money)")
    renew.add_argument("--billing-cycle", type=positive_int, required=True, help="months")
    cancel = plans.add("cancel", _cancel, "cancel the support plan (at the paid period's end)")
    cancel.add_argument("--reason")
    cancel.add_argument("--now", action="store_true", help="at once, not at the period's end")
    plans.add("undo-cancel", _undo_cancel, "withdraw a pending cancellation (the plan is kept)")
