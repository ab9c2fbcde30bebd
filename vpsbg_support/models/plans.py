"""Support plan model.

Only ``SupportPlan.key`` is required: it is what a purchase sends as ``plan``. The list endpoint is
undocumented, so the key is read from ``key``, else ``slug``, else ``name``; every other field is
optional. Unknown keys are kept in ``extra``, exactly as received.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from vpsbg_support.models._wire import WireModel

__all__ = ["SupportPlan"]


@attrs.frozen(kw_only=True)
class SupportPlan(WireModel):
    """A support plan that can be purchased.

    Attributes:
        key: the plan key to purchase, e.g. ``"professional"``.
        name: display name, if given.
        price: price per month without VAT, exact.
        price_with_vat: price per month with VAT, exact.
        status: the account's state for this plan when the API says (``"active"``,
            ``"cancel_requested"``, ...), an open string.
        billing_cycles: the billing cycles (months) the plan can be bought for; empty if not given.
        extra: keys the library does not know, exactly as received.
    """

    key: str
    name: str | None = None
    price: Decimal | None = None
    price_with_vat: Decimal | None = None
    status: str | None = None
    billing_cycles: tuple[int, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
