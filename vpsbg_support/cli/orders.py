"""``vpsbg-support orders ...``: list, show, and wait until an order is paid."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from vpsbg_support import AsyncClient
from vpsbg_support import _constants as C
from vpsbg_support.cli._app import EXIT_OK, Output
from vpsbg_support.cli._format import as_json, table, when
from vpsbg_support.cli._options import Commands, positive_int, seconds
from vpsbg_support.models import Order


def _orders_text(orders: Sequence[Order]) -> str:
    if not orders:
        return "No orders."
    rows = [("ID", "STATUS", "TYPE", "AMOUNT", "CREATED")]
    rows += [
        (str(o.id), o.status, o.type or "-", f"{o.amount_with_vat} with VAT", when(o.created_at))
        for o in orders
    ]
    return table(rows)


def _order_text(order: Order) -> str:
    lines = [
        f"Order {order.id} ({order.type or 'order'}): {order.status}",
        f"Amount: {order.amount} ({order.amount_with_vat} with VAT)",
        f"Created: {when(order.created_at)}  Due: {when(order.due_at)}"
        f"  Paid: {when(order.payment_date)}",
    ]
    lines += [f"  - {service.label or '-'}" for service in order.services]
    return "\n".join(lines)


async def _list(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    page = await client.orders.list(page=args.page, per_page=args.per_page, status=args.status)
    out.emit(as_json(list(page.items)), lambda: _orders_text(page.items))
    return EXIT_OK


async def _show(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    order = await client.orders.get(args.order_id)
    out.emit(as_json(order), lambda: _order_text(order))
    return EXIT_OK


async def _wait(client: AsyncClient, args: argparse.Namespace, out: Output) -> int:
    order = await client.orders.wait(
        args.order_id,
        until=args.until or ["paid"],
        timeout=args.timeout_wait,
        interval=args.interval,
    )
    out.emit(as_json(order), lambda: _order_text(order))
    return EXIT_OK


def register(commands: Commands) -> None:
    """Add the ``orders`` group and its actions."""
    orders = commands.group("orders", "list, show, wait until paid", dest="orders_command")
    listing = orders.add("list", _list, "list orders (one page)")
    listing.add_argument("--page", type=positive_int, help="page number (1)")
    listing.add_argument("--per-page", type=positive_int, help="orders per page")
    listing.add_argument(
        "--status",
        action="append",
        help="only orders in this status (repeat for several; default: the API's choice)",
    )
    show = orders.add("show", _show, "show an order")
    show.add_argument("order_id", type=positive_int)
    wait = orders.add(
        "wait",
        _wait,
        "wait until an order is paid (exit 1 if it is cancelled or the wait times out)",
    )
    wait.add_argument("order_id", type=positive_int)
    wait.add_argument(
        "--until", action="append", metavar="STATUS", help="status to wait for (paid; repeat)"
    )
    wait.add_argument(
        "--wait-timeout",
        dest="timeout_wait",
        type=seconds,
        default=600.0,
        help="seconds to wait in all (600)",
    )
    wait.add_argument(
        "--interval",
        type=seconds,
        default=C.ORDER_WAIT_INTERVAL,
        help=f"seconds between reads, at least ({C.ORDER_WAIT_INTERVAL:g}; grows while unchanged)",
    )
