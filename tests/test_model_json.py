"""to_dict / to_json / from_dict: JSON-ready models with the API's names, and the way back.

"Exact round trip" means, for every documented example body (tests/data):
* ``Model.from_dict(model.to_dict()) == model``, and the same through ``to_json`` text;
* every key the body sent comes back with the same value, under the same name, except a
  drifted alias, which comes back under its documented name (``message`` -> ``content``,
  ``from_customer`` -> ``is_customer``, ``service`` -> ``service_label``);
* the only keys added are documented fields the body left out, written as ``null`` (``[]`` for
  lists): ``to_dict`` always writes every field, so its shape does not depend on the server.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import example
from tests.test_models import EXAMPLES
from vpsbg_support.models import Attachment, Order, Page, SupportPlan, Ticket

#: The drifted spellings the documented examples use, and the documented name written back.
DRIFTED_ALIASES = {"message": "content", "from_customer": "is_customer", "service": "service_label"}


def assert_same_as_sent(sent: Any, written: Any, where: str = "body") -> None:
    """``written`` carries every key of ``sent`` unchanged (aliases renamed); added keys are
    documented fields the body left out, as null or []."""
    if isinstance(sent, dict):
        assert isinstance(written, dict), where
        renamed = {DRIFTED_ALIASES.get(key, key): value for key, value in sent.items()}
        for key, value in renamed.items():
            assert key in written, f"{where}.{key} was dropped"
            assert_same_as_sent(value, written[key], f"{where}.{key}")
        for key in written.keys() - renamed.keys():
            assert written[key] in (None, []), f"{where}.{key} was invented: {written[key]!r}"
    elif isinstance(sent, list):
        assert isinstance(written, list) and len(written) == len(sent), where
        for index, (a, b) in enumerate(zip(sent, written, strict=True)):
            assert_same_as_sent(a, b, f"{where}[{index}]")
    else:
        assert written == sent and type(written) is type(sent), f"{where}: {written!r} != {sent!r}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_documented_example_round_trips(name: str) -> None:
    cls = EXAMPLES[name]
    body = example(name)
    model = cls.from_dict(body)
    data = model.to_dict()
    assert_same_as_sent(body, data)
    assert cls.from_dict(data) == model
    assert cls.from_dict(json.loads(model.to_json())) == model
    assert cls.from_dict(json.loads(model.to_json(indent=2))) == model


def test_a_drifted_alias_is_written_under_its_documented_name() -> None:
    ticket = Ticket.from_dict(example("ticket_get_example_drifted.json"))
    message = ticket.to_dict()["messages"][0]
    assert message["content"] == "Example reply message." and "message" not in message
    assert message["is_customer"] is False and "from_customer" not in message
    assert message["attachments"][0]["mimeType"] == "image/png"


def test_to_dict_is_json_ready_and_keeps_unknown_keys() -> None:
    body = example("ticket_create_example.json")
    body["priority"] = {"level": "high"}
    body["messages"][0]["attachments"][0]["checksum"] = "abc"
    ticket = Ticket.from_dict(body)
    data = ticket.to_dict()
    assert data["priority"] == {"level": "high"}
    assert data["messages"][0]["attachments"][0]["checksum"] == "abc"
    assert isinstance(data["created_at"], str) and data["created_at"].endswith("Z")
    # What json.dumps(attrs.asdict(ticket)) cannot do (datetimes): to_json can.
    assert json.loads(ticket.to_json()) == data
    assert "ü" in Attachment(id=1, name="Grüße.txt").to_json()  # not \u-escaped


def test_money_and_times_survive_the_text_form() -> None:
    order = Order.from_dict(example("order_purchase_example.json"))
    again = Order.from_dict(json.loads(order.to_json()))
    assert again.amount_with_vat == order.amount_with_vat
    assert isinstance(again.amount_with_vat, Decimal)
    plan = SupportPlan(key="pro", price=Decimal("12345678901234567.89"))
    assert SupportPlan.from_dict(json.loads(plan.to_json())) == plan
    made = Ticket(
        id=1, status="opened", subject="s", created_at=datetime(2024, 1, 2, tzinfo=timezone.utc)
    )
    assert made.to_dict()["created_at"] == "2024-01-02T00:00:00.000000Z"
    assert Ticket.from_dict(made.to_dict()) == made


def test_from_dict_names_where_a_shape_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"messages\[0\]\.id: expected an integer"):
        Ticket.from_dict({"id": 1, "status": "s", "subject": "x", "messages": [{"id": "x"}]})


def test_a_page_is_json_ready_too() -> None:
    page: Page[Ticket] = Page(items=(Ticket(id=1, status="opened", subject="s"),), total=1)
    assert json.loads(page.to_json()) == {"data": [page.items[0].to_dict()], "meta": {"total": 1}}
