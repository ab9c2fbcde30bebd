"""Order models: what purchasing, renewing or cancelling a support plan answers with.

Only ``Order.id``, ``Order.status`` and ``OrderInvoice.id`` are required. The rest is optional
because the documented schemas disagree with each other: ``payment_method`` is missing from one
list schema, ``invoices`` and ``services`` appear only in examples (they default to empty tuples),
and every ``payment_information`` key is optional. Money is an exact ``Decimal``; timestamps are
aware UTC datetimes, including ``OrderService.period_from``/``period_to``, which the wire carries as
Unix epoch seconds. Unknown keys are kept in ``extra``, exactly as received.

The documented examples are internally inconsistent (amounts that do not add up, invoices naming
other orders), so nothing here derives one field from another.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from vpsbg_support.models._wire import WireModel

__all__ = ["Order", "OrderInvoice", "OrderService", "PaymentInformation", "Promo"]


@attrs.frozen(kw_only=True)
class Promo(WireModel):
    """A promo code applied to an order or to one of its services.

    Attributes:
        code: the promo code.
        percentage: the discount in percent.
        minimum_billing_cycle: the shortest billing cycle (months) the code applies to.
        extra: keys the library does not know, exactly as received.
    """

    code: str | None = None
    percentage: Decimal | None = None
    minimum_billing_cycle: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class PaymentInformation(WireModel):
    """How an order was paid; card and crypto keys may appear together, each is optional.

    Attributes:
        last_4: last four digits of the card.
        brand: card brand, e.g. ``"visa"``.
        expiry_month: card expiry month as sent (zero-padded string, e.g. ``"05"``).
        expiry_year: card expiry year as sent (string).
        tx_hash: crypto transaction hash.
        tx_amount: crypto amount as sent (string, e.g. ``"0.002793"``).
        confirmed_at: when the payment was confirmed (aware, UTC).
        extra: keys the library does not know, exactly as received.
    """

    last_4: str | None = None
    brand: str | None = None
    expiry_month: str | None = None
    expiry_year: str | None = None
    tx_hash: str | None = None
    tx_amount: str | None = None
    confirmed_at: datetime | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class OrderInvoice(WireModel):
    """An invoice (usually a proforma) issued for an order.

    Attributes:
        id: invoice id.
        invoice_number: the invoice number as sent (zero-padded string).
        created_at: when it was issued (aware, UTC).
        amount: amount without VAT.
        amount_with_vat: amount with VAT.
        type: invoice type, an open string (``"proform"`` seen).
        order_ids: the orders this invoice covers.
        extra: keys the library does not know, exactly as received.
    """

    id: int
    invoice_number: str | None = None
    created_at: datetime | None = None
    amount: Decimal | None = None
    amount_with_vat: Decimal | None = None
    type: str | None = None
    order_ids: tuple[int, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class OrderService(WireModel):
    """One service line of an order.

    Attributes:
        label: what is being bought or renewed.
        sublabel: secondary label (e.g. an IP address).
        period_from: start of the paid period (aware, UTC; epoch seconds on the wire).
        period_to: end of the paid period (aware, UTC; epoch seconds on the wire).
        is_period_changeable: whether the renewal period can still be changed.
        service_id: id of the service.
        service_billing_cycle: the service's billing cycle in months.
        service_minimum_billing_cycle: the shortest billing cycle allowed, in months.
        service_type: kind of service, an open string (``"server"``, ``"server-addon"``, ...).
        amount: amount without VAT.
        amount_with_vat: amount with VAT.
        amount_sublabel: a note on the amount (may be empty).
        promo: the promo applied to this line, if any.
        extra: keys the library does not know, exactly as received.
    """

    label: str | None = None
    sublabel: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    is_period_changeable: bool | None = None
    service_id: int | None = None
    service_billing_cycle: int | None = None
    service_minimum_billing_cycle: int | None = None
    service_type: str | None = None
    amount: Decimal | None = None
    amount_with_vat: Decimal | None = None
    amount_sublabel: str | None = None
    promo: Promo | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class Order(WireModel):
    """An order, as answered by purchasing, renewing or cancelling a support plan.

    Attributes:
        id: order id.
        status: order status, an open string (``"processing"``, ``"awaiting_payment"``,
            ``"paid"``, ``"cancelled"`` documented).
        type: order type, an open string (``"new-service"``, ``"renew-service"``, ...).
        tax_rate: VAT multiplier, e.g. ``Decimal("1.2")`` for 20 %.
        amount: amount without VAT.
        amount_with_vat: amount with VAT.
        amount_from_balance: amount taken from the account balance once paid.
        payment_method: e.g. ``"balance"``, ``"card"``; an open string.
        auto_pay: whether the order tries to pay itself.
        promo_applicable: whether a promo code can still be applied.
        created_at: when the order was placed (aware, UTC).
        due_at: when payment is due (aware, UTC).
        payment_date: when it was paid (aware, UTC), ``None`` if unpaid.
        invoices: the invoices issued for it.
        promo: the promo applied, if any.
        payment_information: payment details, if any.
        services: the service lines.
        extra: keys the library does not know, exactly as received.
    """

    id: int
    status: str
    type: str | None = None
    tax_rate: Decimal | None = None
    amount: Decimal | None = None
    amount_with_vat: Decimal | None = None
    amount_from_balance: Decimal | None = None
    payment_method: str | None = None
    auto_pay: bool | None = None
    promo_applicable: bool | None = None
    created_at: datetime | None = None
    due_at: datetime | None = None
    payment_date: datetime | None = None
    invoices: tuple[OrderInvoice, ...] = ()
    promo: Promo | None = None
    payment_information: PaymentInformation | None = None
    services: tuple[OrderService, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
