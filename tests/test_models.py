"""Models and the one converter: documented bodies parse, drift is tolerated, bad shapes fail."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpsbg_support import _convert, models
from vpsbg_support._convert import ConversionError, structure, structure_list, unstructure
from vpsbg_support.models import (
    Attachment,
    Department,
    Order,
    OrderInvoice,
    Page,
    Promo,
    RelatedService,
    SupportPlan,
    Ticket,
)

DATA = Path(__file__).parent / "data"
UTC = timezone.utc

#: Every documented example body and the model it documents.
EXAMPLES: dict[str, type[Any]] = {
    "ticket_create_example.json": Ticket,
    "ticket_reply_example.json": Ticket,
    "ticket_get_example_drifted.json": Ticket,
    "order_purchase_example.json": Order,
    "order_renew_server_example.json": Order,
}
#: Every public model, so a model added later is fuzzed too.
# The wire models: not Page (generic), nor the events watch() builds (never read from JSON).
MODELS: list[type[Any]] = [
    getattr(models, name)
    for name in models.__all__
    if name != "Page" and name not in models.events.__all__
]


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def ticket(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = load("ticket_create_example.json")
    body.update(changes)
    return body


def order(**changes: Any) -> dict[str, Any]:
    return {"id": 1, "status": "paid", **changes}


# --- documented examples -----------------------------------------------------------------


def test_create_example_parses_with_types_the_user_relies_on() -> None:
    t = structure(load("ticket_create_example.json"), Ticket)

    assert (t.id, t.status, t.subject, t.department) == (
        216,
        "opened",
        "Server misbehaves",
        "tech-support",
    )
    assert t.created_at == datetime(2024, 8, 2, 11, 57, 57, tzinfo=UTC)
    assert t.updated_at == datetime(2024, 8, 2, 12, 2, 18, tzinfo=UTC)
    assert (t.service_label, t.service_type, t.service_id) == (
        "ubuntu-16gb - 87.120.8.29",
        "server",
        2747,
    )
    assert t.user is None
    [message] = t.messages
    assert (message.id, message.content, message.is_customer) == (
        50,
        "Example reply message.",
        True,
    )
    assert message.created_at == datetime(2024, 10, 22, 11, 54, 28, tzinfo=UTC)
    assert message.attachments == (
        Attachment(id=5, name="first_attachment.png", size=1426, mime_type="image/png"),
        Attachment(id=6, name="second_attachment.png", size=1242, mime_type="image/png"),
    )
    assert [a.id for a in t.attachments] == [5, 6]


def test_reply_example_reads_service_as_the_service_label() -> None:
    t = structure(load("ticket_reply_example.json"), Ticket)

    assert t.service_label == "Cloud VPS 2 GB"
    assert (t.service_type, t.service_id) == (None, None)
    assert t.messages[0].is_customer is False
    assert t.extra == {}


def test_drifted_get_example_resolves_aliases_and_missing_fields() -> None:
    t = structure(load("ticket_get_example_drifted.json"), Ticket)

    assert t.user == "john doe"
    first, second = t.messages
    assert (first.id, first.content, first.is_customer) == (50, "Example reply message.", False)
    assert (second.id, second.created_at) == (None, None)
    assert second.content == "Example reply message."
    assert first.created_at is None
    assert [a.mime_type for a in t.attachments] == ["image/png"] * 4
    assert first.extra == {} and t.extra == {}


def test_money_as_a_decimal_string_is_exact() -> None:
    # Laravel's decimal cast sends money as strings; they must parse exactly, not be rejected.
    parsed = structure({"id": 1, "status": "paid", "amount": "15.00", "tax_rate": "1.2"}, Order)
    assert parsed.amount == Decimal("15.00") and parsed.tax_rate == Decimal("1.2")


def test_purchase_example_money_is_exact_and_periods_are_utc_datetimes() -> None:
    order = structure(load("order_purchase_example.json"), Order)

    assert (order.id, order.status, order.type) == (200158, "processing", "new-service")
    assert (order.tax_rate, order.amount, order.amount_with_vat) == (
        Decimal("1.2"),
        Decimal(15),
        Decimal(18),
    )
    assert order.amount_from_balance == Decimal(0)
    assert (order.payment_method, order.auto_pay, order.promo_applicable) == ("balance", True, True)
    assert order.payment_date == datetime(2024, 11, 25, 18, 34, 33, tzinfo=UTC)
    assert order.invoices == (
        OrderInvoice(
            id=8552,
            invoice_number="0000007513",
            created_at=datetime(2024, 9, 24, 21, 0, tzinfo=UTC),
            amount=Decimal(15),
            amount_with_vat=Decimal(18),
            type="proform",
            order_ids=(208465,),
        ),
    )
    assert order.promo == Promo(code="fall2403", percentage=Decimal(10), minimum_billing_cycle=3)
    info = order.payment_information
    assert info is not None
    assert (info.last_4, info.expiry_month, info.tx_amount) == ("4242", "05", "0.002793")
    assert info.confirmed_at == datetime(2024, 12, 10, 22, 0, tzinfo=UTC)
    [service] = order.services
    assert service.amount_with_vat == Decimal("140.4")
    assert service.period_from == datetime.fromtimestamp(1733781600, UTC)
    assert service.period_from.tzinfo is not None
    assert service.period_to == datetime.fromtimestamp(1741557600, UTC)
    assert (service.service_id, service.is_period_changeable) == (2887, False)
    assert service.promo == Promo(code="string", percentage=Decimal(0))


def test_renew_example_nulls_become_none() -> None:
    order = structure(load("order_renew_server_example.json"), Order)

    assert (order.id, order.status, order.type) == (7801, "awaiting_payment", "renew-service")
    assert order.payment_date is None
    assert order.promo is None
    assert order.payment_information is None
    addon = order.services[1]
    assert (addon.sublabel, addon.service_billing_cycle, addon.promo) == (None, None, None)
    assert addon.service_type == "server-addon"
    assert order.services[0].amount_sublabel == ""


def test_orders_list_fragment_is_a_page_of_orders_without_optional_parts() -> None:
    page = structure_list(load("orders_list_fragment.json"), Order)

    [order] = page
    assert (order.id, order.status, order.amount_from_balance) == (7413, "paid", Decimal(27))
    assert (order.payment_method, order.invoices, order.services) == (None, (), ())
    assert (page.current_page, page.next_url, page.has_next) == (None, None, False)


# --- unknown keys and aliases ----------------------------------------------------------------


def test_unknown_keys_land_in_extra_at_every_level() -> None:
    body = ticket(priority={"level": 2}, tags=["a"])
    body["messages"][0]["edited"] = True
    body["messages"][0]["attachments"][0]["checksum"] = "abc"

    t = structure(body, Ticket)

    assert t.extra == {"priority": {"level": 2}, "tags": ["a"]}
    assert t.messages[0].extra == {"edited": True}
    assert t.attachments[0].extra == {"checksum": "abc"}
    assert t.attachments[1].extra == {}


def test_an_alias_that_is_not_used_is_kept_in_extra() -> None:
    t = structure(ticket(service="Cloud VPS 2 GB"), Ticket)

    assert t.service_label == "ubuntu-16gb - 87.120.8.29"
    assert t.extra == {"service": "Cloud VPS 2 GB"}


def test_attachment_accepts_snake_case_mime_type() -> None:
    a = structure({"id": 1, "name": "a.txt", "size": 3, "mime_type": "text/plain"}, Attachment)
    assert a.mime_type == "text/plain"


def test_department_slug_may_come_as_key() -> None:
    d = structure({"id": "2", "name": "Technical", "key": "tech-support"}, Department)
    assert d == Department(id=2, name="Technical", slug="tech-support")


def test_related_service() -> None:
    s = structure(
        {"id": 2887, "type": "server", "label": "ubuntu-2gb", "ip": "1.2.3.4"}, RelatedService
    )
    assert (s.id, s.type, s.label, s.extra) == (2887, "server", "ubuntu-2gb", {"ip": "1.2.3.4"})


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"key": "professional", "slug": "pro", "name": "Professional"}, "professional"),
        ({"slug": "pro", "name": "Professional"}, "pro"),
        ({"name": "professional"}, "professional"),
    ],
)
def test_support_plan_key_falls_back_to_slug_then_name(body: dict[str, Any], key: str) -> None:
    assert structure(body, SupportPlan).key == key


def test_support_plan_fields() -> None:
    plan = structure(
        {"key": "pro", "price": 49.9, "price_with_vat": 59.88, "status": "cancel_requested",
         "billing_cycles": [1, 3, 12]},
        SupportPlan,
    )  # fmt: skip
    assert plan == SupportPlan(
        key="pro",
        price=Decimal("49.9"),
        price_with_vat=Decimal("59.88"),
        status="cancel_requested",
        billing_cycles=(1, 3, 12),
    )


def test_list_item_without_messages_has_an_empty_conversation() -> None:
    body = ticket()
    del body["messages"]
    assert structure(body, Ticket).messages == ()


@pytest.mark.parametrize(
    "text",
    [
        "2024-08-02T11:57:57.000000Z",
        "2024-08-02T11:57:57Z",
        "2024-08-02T11:57:57+00:00",
        "2024-08-02T13:57:57+02:00",
        "2024-08-02T11:57:57",
        "2024-08-02T11:57:57.000Z",
    ],
)
@pytest.mark.parametrize(
    "python_310_rules",
    [
        # The 3.11+ path needs the 3.11+ fromisoformat(); on 3.10 only the rewriting path exists.
        pytest.param(
            False,
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11+ fromisoformat"),
        ),
        True,
    ],
)
def test_timestamps_in_every_form_become_the_same_aware_utc_datetime(
    text: str, python_310_rules: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.10's fromisoformat() rejects "Z"; the converter rewrites the text there.
    monkeypatch.setattr(_convert, "_FROMISOFORMAT_IS_STRICT", python_310_rules)
    t = structure(ticket(created_at=text), Ticket)
    assert t.created_at == datetime(2024, 8, 2, 11, 57, 57, tzinfo=UTC)
    assert t.created_at is not None and t.created_at.utcoffset() is not None


def test_fractions_are_kept_to_the_microsecond() -> None:
    t = structure(ticket(created_at="2024-08-02T11:57:57.5Z"), Ticket)
    assert t.created_at == datetime(2024, 8, 2, 11, 57, 57, 500000, tzinfo=UTC)


def test_numeric_string_ids_and_zero_one_booleans_are_accepted() -> None:
    body = ticket(id="216", service_id="2747")
    body["messages"][0]["is_customer"] = 1
    t = structure(body, Ticket)
    assert (t.id, t.service_id, t.messages[0].is_customer) == (216, 2747, True)


# --- pages ---------------------------------------------------------------------------------


def test_bare_array_is_a_page_without_paging_information() -> None:
    page = structure_list([ticket(), ticket(id=217)], Ticket)

    assert [t.id for t in page] == [216, 217]
    assert len(page) == 2
    assert isinstance(page.items, tuple)
    assert (page.current_page, page.last_page, page.per_page, page.total) == (None,) * 4
    assert page.has_next is False


def test_envelope_gives_paging_fields_and_keeps_the_rest() -> None:
    body = {
        "data": [ticket()],
        "links": {"first": "https://x/t?page=1", "last": "https://x/t?page=3", "prev": None,
                  "next": "https://x/t?page=2"},
        "meta": {"current_page": 1, "from": 1, "last_page": 3, "links": [], "path": "https://x/t",
                 "per_page": 1, "to": 1, "total": 3},
    }  # fmt: skip
    page = structure_list(body, Ticket)

    assert [t.id for t in page] == [216]
    assert (page.current_page, page.last_page, page.per_page, page.total) == (1, 3, 1, 3)
    assert (page.next_url, page.prev_url) == ("https://x/t?page=2", None)
    assert page.has_next is True
    assert page.extra["meta"] == {"from": 1, "links": [], "path": "https://x/t", "to": 1}
    assert page.extra["links"] == {"first": "https://x/t?page=1", "last": "https://x/t?page=3"}


@pytest.mark.parametrize(
    ("meta", "links", "has_next"),
    [
        ({"current_page": 2, "last_page": 3}, None, True),
        ({"current_page": 3, "last_page": 3}, {"next": None, "prev": "p2"}, False),
        (None, {"next": "p2"}, True),
        (None, None, False),
    ],
)
def test_has_next(meta: Any, links: Any, has_next: bool) -> None:
    body: dict[str, Any] = {"data": []}
    if meta is not None:
        body["meta"] = meta
    body["links"] = links
    assert structure_list(body, Department).has_next is has_next


def test_page_of_the_generic_type_can_be_asked_of_structure() -> None:
    assert structure([{"id": 1, "name": "Sales"}], Page[Department]) == structure_list(
        [{"id": 1, "name": "Sales"}], Department
    )


# --- wrong shapes --------------------------------------------------------------------------


def _deep_bad_size() -> dict[str, Any]:
    body = ticket()
    message = body["messages"][0]
    body["messages"] = [
        message,
        message,
        message,
        {**message, "attachments": [{"id": 7, "name": "x", "size": "abc"}]},
    ]
    return body


@pytest.mark.parametrize(
    ("body", "cl", "message"),
    [
        (
            _deep_bad_size(),
            Ticket,
            "messages[3].attachments[0].size: expected an integer, got 'abc'",
        ),
        (ticket(messages={"first": {}}), Ticket, "messages: expected an array, got an object"),
        (ticket(id=216.0), Ticket, "id: expected an integer, got 216.0"),
        (ticket(id=True), Ticket, "id: expected an integer, got true"),
        (ticket(id=None), Ticket, "id: expected an integer, got null"),
        (ticket(subject=5), Ticket, "subject: expected a string, got 5"),
        (ticket(updated_at="now"), Ticket, "updated_at: expected an ISO-8601 timestamp, got 'now'"),
        ({"id": 1, "status": "opened"}, Ticket, "subject: required key is missing"),
        ([], Ticket, "expected an object, got an array"),
        (None, Order, "expected an object, got null"),
        (order(amount="15 EUR"), Order, "amount: expected a number, got '15 EUR'"),
        (order(amount=float("nan")), Order, "amount: expected a number, got nan"),
        (
            order(services=[{"period_from": "x"}]),
            Order,
            "services[0].period_from: expected an integer, got 'x'",
        ),
        (order(auto_pay="yes"), Order, "auto_pay: expected a boolean, got 'yes'"),
        (order(promo=[1]), Order, "promo: expected an object, got an array"),
        (
            order(services=[{"period_to": 10**20}]),
            Order,
            "services[0].period_to: expected a Unix timestamp in range, got 100000000000000000000",
        ),
        (
            order(due_at="0001-01-01T00:00:00+05:00"),
            Order,
            "due_at: expected an ISO-8601 timestamp, got '0001-01-01T00:00:00+05:00'",
        ),
        ({"name": None}, SupportPlan, "key: required key is missing (nor 'name')"),
    ],
)
def test_wrong_shapes_raise_conversion_error_naming_the_path(
    body: Any, cl: type[Any], message: str
) -> None:
    with pytest.raises(ConversionError) as info:
        structure(body, cl)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"data": [{"id": 1, "name": "a"}, {"id": "x"}]},
            "data[1].id: expected an integer, got 'x'",
        ),
        ([{"id": 1}], "[0].name: required key is missing"),
        ({"data": {}}, "data: expected an array, got an object"),
        ({"items": []}, "expected an array, or an object with a 'data' array, got an object"),
        ({"data": [], "meta": {"total": "many"}}, "meta.total: expected an integer, got 'many'"),
        ({"data": [], "links": "x"}, "links: expected an object, got 'x'"),
        ("[]", "expected an array, or an object with a 'data' array, got '[]'"),
    ],
)
def test_bad_list_bodies_raise_conversion_error_naming_the_path(body: Any, message: str) -> None:
    with pytest.raises(ConversionError) as info:
        structure_list(body, Department)
    assert str(info.value) == message


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(ConversionError) as info:
        structure(ticket(id="9" * 5000), Ticket)
    assert len(str(info.value)) < 120


def test_php_empty_objects_and_gapped_arrays_are_read() -> None:
    # PHP's json_encode writes an empty object as [] and an array with gaps in its keys as an
    # object: a paid purchase must not become an unreadable answer over either.
    body = load("order_purchase_example.json")
    body["payment_information"] = []
    body["promo"] = []
    paid = structure(body, Order)
    assert paid.payment_information is None and paid.promo is None

    first, second = {"id": 1, "name": "a.log"}, {"id": 2, "name": "b.log"}
    message = {"content": "logs", "attachments": {"2": second, "0": first}}
    read = structure(ticket(messages={"1": message}), Ticket)
    assert [a.name for a in read.messages[0].attachments] == ["a.log", "b.log"]

    for key in ("first", "\u00b2", "9" * 5000):  # "²" is a digit to str.isdigit(), not int()
        with pytest.raises(ConversionError, match="attachments: expected an array"):
            structure(ticket(messages=[{"attachments": {key: first}}]), Ticket)
    with pytest.raises(ConversionError, match="subject: expected a string"):
        structure(ticket(subject=[]), Ticket)  # [] is an empty object only where one is expected


# --- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_round_trip_of_every_example(name: str) -> None:
    model = structure(load(name), EXAMPLES[name])
    wire = unstructure(model)
    json.dumps(wire)  # JSON-ready
    assert structure(wire, EXAMPLES[name]) == model


def test_round_trip_of_a_page_with_extra_keys() -> None:
    body = {"data": [ticket(flag=1)], "links": {"first": "f", "next": None},
            "meta": {"current_page": 1, "path": "p"}, "debug": True}  # fmt: skip
    page = structure_list(body, Ticket)
    assert structure_list(unstructure(page), Ticket) == page


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        (140.4, 140.4),
        ("15.00", 15),
        ("12345678901234567.89", "12345678901234567.89"),
        ("0.0000001234567890123456789", "0.0000001234567890123456789"),
        ("0.1234567890123456789012345678901", "0.1234567890123456789012345678901"),
        ("12345678901234567890123456789012.5", "12345678901234567890123456789012.5"),
    ],
)
def test_money_is_written_back_without_losing_a_digit(sent: Any, written: Any) -> None:
    # A float holds every real price exactly, but not every decimal a server may send; those
    # go back as the decimal string they came as, never rounded.
    body = load("order_purchase_example.json")
    body["amount"] = sent
    order = structure(body, Order)
    wire = unstructure(order)
    assert wire["amount"] == written and type(wire["amount"]) is type(written)
    assert structure(json.loads(json.dumps(wire)), Order) == order


def test_unstructure_writes_wire_names_and_formats() -> None:
    t = structure(load("ticket_get_example_drifted.json"), Ticket)
    wire = unstructure(t)
    message = wire["messages"][0]
    assert message["content"] == "Example reply message."
    assert message["is_customer"] is False
    assert message["attachments"][0]["mimeType"] == "image/png"
    assert wire["created_at"] == "2024-08-02T11:57:57.000000Z"
    assert wire["user"] == "john doe"

    order = unstructure(structure(load("order_purchase_example.json"), Order))
    assert order["services"][0]["period_from"] == 1733781600
    assert order["services"][0]["amount_with_vat"] == 140.4
    assert order["amount"] == 15 and isinstance(order["amount"], int)
    assert order["tax_rate"] == 1.2


def test_unstructure_merges_extra_back() -> None:
    body = ticket(priority="high")
    body["messages"][0]["attachments"][0]["checksum"] = "abc"
    wire = unstructure(structure(body, Ticket))
    assert wire["priority"] == "high"
    assert wire["messages"][0]["attachments"][0]["checksum"] == "abc"


# --- arbitrary input -----------------------------------------------------------------------


def _wire_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        keys = set(value)
        for item in value.values():
            keys |= _wire_keys(item)
        return keys
    if isinstance(value, list):
        return set().union(*map(_wire_keys, value)) if value else set()
    return set()


#: Keys the documented bodies use, so generated objects look like models often enough to go deep.
_KEYS = sorted(
    set().union(*(_wire_keys(load(name)) for name in EXAMPLES))
    | {"message", "from_customer", "mime_type", "service", "user", "key", "slug", "name", "data",
       "meta", "links", "type", "label", "price", "billing_cycles"}
)  # fmt: skip

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, 1, -1, 2**31, 2**63, -(2**63), 10**20, 10**400])
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        ["2024-08-02T11:57:57.000000Z", "216", "-1", "1e3", "0001-01-01T00:00:00+05:00"]
    )
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), children, max_size=8)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(data=json_values, cl=st.sampled_from(MODELS))
def test_arbitrary_json_only_ever_raises_conversion_error(data: Any, cl: type[Any]) -> None:
    try:
        result = structure(data, cl)
    except ConversionError:
        return
    assert isinstance(result, cl)
    assert structure(unstructure(result), cl) == result


@settings(max_examples=200, deadline=None)
@given(data=json_values, cl=st.sampled_from(MODELS))
def test_arbitrary_list_json_only_ever_raises_conversion_error(data: Any, cl: type[Any]) -> None:
    try:
        page = structure_list(data, cl)
    except ConversionError:
        return
    assert all(isinstance(item, cl) for item in page)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_documented_bodies_with_one_part_replaced_only_ever_raise_conversion_error(
    data: st.DataObject,
) -> None:
    name = data.draw(st.sampled_from(sorted(EXAMPLES)))
    body = load(name)
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(json_values)
    try:
        structure(body, EXAMPLES[name])
    except ConversionError as exc:
        assert str(exc)


def test_user_as_an_object_gives_its_name() -> None:
    # `user` is undocumented (seen once, as a string); an object must not fail the whole ticket.
    data = {
        "id": 1,
        "status": "opened",
        "subject": "Disk full",
        "user": {"id": 5, "name": "John Doe"},
        "messages": [{"content": "Hello", "user": {"email": "ops@example.com"}}],
    }
    ticket = structure(data, Ticket)
    assert ticket.user == "John Doe"
    assert ticket.messages[0].user == "ops@example.com"
    with pytest.raises(ConversionError, match="user: expected a name"):
        structure({**data, "user": {"id": 5}}, Ticket)
