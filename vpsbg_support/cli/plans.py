"""``vpsbg-support plans ...``: list, purchase, renew, cancel, undo-cancel; asks before money."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vpsbg_support._client import AsyncClient
from vpsbg_support._convert import unstructure
from vpsbg_support.cli._app import EXIT_ABORTED, EXIT_OK, EXIT_USAGE, CLIExit, Output
from vpsbg_support.cli._format import table
from vpsbg_support.cli._options import Commands, positive_int
from vpsbg_support.models import Order, SupportPlan

COSTS_MONEY = "This creates an order that costs money."


def confirm(args: argparse.Namespace, action: str, consequence: str) -> None:
    """Ask before an action on the account's plan, unless ``--yes``.

    Args:
        args: the parsed arguments (``yes``).
        action: what is about to be done, e.g. "Renew the support plan for 3 month(s)".
        consequence: what it means for the account, in one sentence.

    Raises:
        CLIExit: declined (1: nothing was sent), or no terminal to ask on (2: pass ``--yes``).
    """
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CLIExit(f"{action}: pass --yes to confirm (no terminal to ask on)", EXIT_USAGE)
    sys.stderr.write(f"{action}. {consequence} Proceed? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CLIExit("aborted, nothing was sent", EXIT_ABORTED)


def order_text(order: Order | None, done: str) -> str:
    """One line for an order the API answered with (or ``done.`` when it sent none)."""
    if order is None:
        return f"{done}."
    amount = f"{order.amount} ({order.amount_with_vat} with VAT)"
    return f"{done}: order {order.id} ({order.type or 'order'}), {amount}, status {order.status}."


def _plans_text(plans: Sequence[SupportPlan]) -> str:
    rows = [("PLAN", "NAME", "PRICE/MONTH", "STATUS")]
    rows += [(p.key, p.name or "-", str(p.price or "-"), p.status or "-") for p in plans]
    return table(rows)


async def _list(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    plans = await client.plans.list()
    out.emit(unstructure(plans), lambda: _plans_text(plans))
    return EXIT_OK


async def _purchase(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    confirm(
        args,
        f"Purchase support plan {args.plan!r} for {args.billing_cycle} month(s)",
        COSTS_MONEY,
    )
    order = await client.plans.purchase(plan=args.plan, billing_cycle=args.billing_cycle)
    out.emit(unstructure(order), lambda: order_text(order, "Purchased"))
    return EXIT_OK


async def _renew(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    confirm(args, f"Renew the support plan for {args.billing_cycle} month(s)", COSTS_MONEY)
    order = await client.plans.renew(billing_cycle=args.billing_cycle)
    out.emit(unstructure(order), lambda: order_text(order, "Renewed"))
    return EXIT_OK


async def _cancel(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    if args.now:
        confirm(
            args,
            "Cancel the support plan now",
            "The plan ends at once, not at the end of the paid period.",
        )
    else:
        confirm(
            args,
            "Cancel the support plan at the end of the paid period",
            "The plan stays until the paid period ends, then ends.",
        )
    order = await client.plans.cancel(reason=args.reason, now=args.now)
    out.emit(unstructure(order), lambda: order_text(order, "Cancellation requested"))
    return EXIT_OK


async def _undo_cancel(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    order = await client.plans.undo_cancel()
    out.emit(unstructure(order), lambda: order_text(order, "Cancellation withdrawn"))
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
