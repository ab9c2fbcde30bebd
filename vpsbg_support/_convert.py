"""The one cattrs converter: wire names, aliases, exact money, UTC datetimes, unknown keys kept.

This module is the only place that knows how the VPSBG API spells things. Each model has one row in
``_SPECS``: for every attribute, the wire names to read it from (the first present one wins; the
first is also the name written back) and how to read and write its value. From that table the
converter gets a hand-written-speed structure hook and an unstructure hook per model, registered on
one module-level :data:`converter`.

Rules, chosen so that drift in the docs parses but a wrong shape never passes silently:

* ids and counts are ``int``; a numeric string (``"216"``) is accepted because path ids are typed
  string in the docs; floats, booleans and other strings are rejected.
* money is an exact ``Decimal`` built from the JSON number as written (``140.4`` ->
  ``Decimal("140.4")``; exact up to 15 significant digits, past which ``json.loads`` has already
  rounded the float) or from a decimal string (``"15.00"``, Laravel's decimal cast); other
  strings, booleans and non-finite numbers are rejected. It is written back as a JSON number,
  or as a decimal string when a float cannot hold it exactly.
* timestamps are aware UTC datetimes; ``...Z``, ``+00:00`` and forms without a fraction are read on
  every supported Python; a timestamp without an offset is taken as UTC (the API documents UTC);
  other offsets are converted to UTC. ``period_from``/``period_to`` are epoch seconds.
* booleans also accept ``0``/``1`` (a common PHP serialisation); nothing else.
* a list-valued field that is ``null`` or missing becomes an empty tuple; an object whose keys
  are all digits (PHP's form of an array with gaps in its keys) gives its items in key order;
  other non-arrays raise. An optional object field holding ``[]`` (PHP's empty object) is None.
* keys the model does not know, and aliases that were present but not used, go to ``extra``
  unchanged; :func:`unstructure` merges them back, so ``structure(unstructure(x)) == x``.

Every shape problem raises :class:`ConversionError` whose message names the path, e.g.
``messages[3].attachments[0].size: expected an integer, got 'abc'``.
"""

from __future__ import annotations

import linecache
import math
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar, get_args, get_origin

import attrs
import cattrs

from vpsbg_support.models import (
    Attachment,
    Department,
    Order,
    OrderInvoice,
    OrderService,
    Page,
    PaymentInformation,
    Promo,
    RelatedService,
    SupportPlan,
    Ticket,
    TicketMessage,
    _wire,
)

__all__ = ["ConversionError", "converter", "structure", "structure_list", "unstructure"]

T = TypeVar("T")

_Parse = Callable[[Any], Any]
_Dump = Callable[[Any], Any]


class ConversionError(ValueError):
    """A response body does not have the shape the model needs.

    Attributes:
        reason: what was wrong, e.g. ``"expected an integer, got 'abc'"``.
        path: where, as keys and list indexes from the top of the body, e.g.
            ``("messages", 3, "attachments", 0, "size")``.
    """

    def __init__(self, reason: str, path: tuple[str | int, ...] = ()) -> None:
        """Build the error.

        Args:
            reason: what was wrong.
            path: where it was, outermost first.
        """
        self.reason = reason
        self.path = path
        where = _render_path(path)
        super().__init__(f"{where}: {reason}" if where else reason)

    def under(self, segment: str | int) -> ConversionError:
        """Return the same error one level deeper in the body.

        Args:
            segment: the key or list index that contains the place of this error.

        Returns:
            A new error whose path starts with ``segment``.
        """
        return ConversionError(self.reason, (segment, *self.path))


def _render_path(path: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        else:
            parts.append(f".{segment}" if parts else segment)
    return "".join(parts)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    # Bodies can be large; the message only needs enough to recognise the value.
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(what: str, value: Any) -> ConversionError:
    return ConversionError(f"expected {what}, got {_describe(value)}")


# --- scalar readers and writers ------------------------------------------------------------

# Bounded so int() never meets a string long enough to trip the interpreter's digit limit.
_INT_STRING = re.compile(r"-?[0-9]{1,30}")


def _read_int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and _INT_STRING.fullmatch(value):
        return int(value)
    raise _expected("an integer", value)


def _read_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _expected("a string", value)


def _read_display_name(value: Any) -> str:
    """``user`` is undocumented (seen once, as a string): read a name from whatever arrives
    rather than fail a whole ticket over it. The raw value stays in the exported raw JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("name", "full_name", "username", "email"):
            if isinstance(value.get(key), str):
                return str(value[key])
        raise _expected("a name", value)
    if type(value) is int or type(value) is float:
        return str(value)
    raise _expected("a name", value)


def _read_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    if type(value) is int and value in (0, 1):
        return value == 1
    raise _expected("a boolean", value)


# A plain decimal number as a string: Laravel's ``decimal`` cast serialises money as "15.00".
_DECIMAL_STRING = re.compile(r"-?[0-9]{1,100}(\.[0-9]{1,100})?")


def _read_decimal(value: Any) -> Decimal:
    if type(value) is int:
        return Decimal(value)
    if type(value) is float and math.isfinite(value):
        # repr() is the shortest string that round-trips, i.e. the number as the JSON wrote it.
        return Decimal(repr(value))
    if isinstance(value, str) and _DECIMAL_STRING.fullmatch(value.strip()):
        return Decimal(value.strip())
    raise _expected("a number", value)


def _dump_decimal(value: Decimal) -> int | float | str:
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    # A JSON number when a float holds it exactly (every real price); else the decimal string,
    # as Laravel's decimal cast writes money, so no digit is lost on the way back.
    return number if Decimal(repr(number)) == value else format(value, "f")


_UTC = timezone.utc
# Python 3.10's fromisoformat() rejects a trailing "Z" and fractions other than 3 or 6 digits;
# 3.11+ reads every ISO-8601 form the API uses.
_FROMISOFORMAT_IS_STRICT = sys.version_info < (3, 11)
_ISO_FRACTION = re.compile(r"(\.[0-9]+)(?=[+-]|$)")


def _pad_fraction(match: re.Match[str]) -> str:
    return match.group(1)[:7].ljust(7, "0")


def _read_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _expected("an ISO-8601 timestamp", value)
    text = value
    if _FROMISOFORMAT_IS_STRICT:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        text = _ISO_FRACTION.sub(_pad_fraction, text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is _UTC:
            return parsed
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=_UTC)
        return parsed.astimezone(_UTC)
    except (ValueError, OverflowError):
        raise _expected("an ISO-8601 timestamp", value) from None


def _dump_datetime(value: datetime) -> str:
    # isoformat() rather than strftime("%Y"), which does not zero-pad years before 1000 on glibc.
    return value.astimezone(_UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _read_epoch(value: Any) -> datetime:
    seconds = _read_int(value)
    try:
        return datetime.fromtimestamp(seconds, _UTC)
    except (ValueError, OverflowError, OSError):
        raise _expected("a Unix timestamp in range", value) from None


def _dump_epoch(value: datetime) -> int:
    return int(value.timestamp())


def _is_index(key: object) -> bool:
    """A PHP array index written as an object key: ASCII digits ("²" is a digit to isdigit()),
    and short enough for int()."""
    return type(key) is str and 0 < len(key) <= 18 and key.isascii() and key.isdigit()


def _tuple_of(read: _Parse) -> _Parse:
    def read_tuple(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            if value is None:
                return ()
            if isinstance(value, dict) and all(_is_index(k) for k in value):
                # PHP writes an array whose keys are not 0..n-1 (filtered, say) as an object
                # {"0": ..., "2": ...}: its items, in key order.
                value = [value[key] for key in sorted(value, key=int)]
            else:
                raise _expected("an array", value)
        try:
            return tuple([read(item) for item in value])
        except ConversionError:
            pass
        # Only on failure: walk again to learn which item failed, so the happy path stays a
        # plain comprehension.
        for index, item in enumerate(value):
            try:
                read(item)
            except ConversionError as exc:
                raise exc.under(index) from None
        raise AssertionError("unreachable: an item failed once and then passed")  # pragma: no cover

    return read_tuple


def _identity(value: Any) -> Any:
    return value


def _dump_list(dump: _Dump) -> _Dump:
    def dump_list(value: tuple[Any, ...] | None) -> list[Any] | None:
        return None if value is None else [dump(item) for item in value]

    return dump_list


# --- models --------------------------------------------------------------------------------


class _Field(NamedTuple):
    attr: str
    #: wire names to read from, in order of preference; the first is written back.
    names: tuple[str, ...]
    kind: str
    required: bool
    #: when none of ``names`` gives a value, take the value of this other attribute.
    fallback: str | None


def _field(
    attr: str,
    kind: str,
    *aliases: str,
    required: bool = False,
    wire: str | None = None,
    fallback: str | None = None,
) -> _Field:
    if kind not in _KINDS:
        raise LookupError(f"unknown field kind {kind!r}; register its model first")
    return _Field(attr, (wire or attr, *aliases), kind, required, fallback)


#: kind -> (reader of a non-null wire value, writer of a non-None attribute value).
_KINDS: dict[str, tuple[_Parse, _Dump]] = {
    "int": (_read_int, _identity),
    "str": (_read_str, _identity),
    "display_name": (_read_display_name, _identity),
    "bool": (_read_bool, _identity),
    "decimal": (_read_decimal, _dump_decimal),
    "datetime": (_read_datetime, _dump_datetime),
    "epoch": (_read_epoch, _dump_epoch),
    "tuple[int]": (_tuple_of(_read_int), _dump_list(_identity)),
}
#: A test the generated code inlines to skip the reader call for values already right.
_ALREADY_RIGHT = {
    "int": "type({v}) is int",
    "str": "type({v}) is str",
    "display_name": "type({v}) is str",
    "bool": "({v} is True or {v} is False)",
}

#: Field kinds that are models (JSON objects).
_MODEL_KINDS: set[str] = set()
_structure_hooks: dict[type[Any], _Parse] = {}


def _leftovers(data: dict[str, Any], names: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    used = set()
    for aliases in names:
        for name in aliases:
            if name in data:
                used.add(name)
                break
    return {key: value for key, value in data.items() if key not in used}


def _model_items(kind: str) -> str | None:
    """The item kind of a ``tuple[<model>]`` field kind; None for any other kind."""
    item = kind[len("tuple[") : -1] if kind.startswith("tuple[") else ""
    return item if item in _MODEL_KINDS else None


def _item_error(read: _Parse, value: Any, error: ConversionError) -> ConversionError:
    """The error ``read`` gives for ``value``: for a list, the one naming the failing item."""
    try:
        read(value)
    except ConversionError as exc:
        return exc
    return error  # pragma: no cover - the same items fail again, the same way


def _missing(name: str, fallback: str | None = None) -> ConversionError:
    also = f" (nor {fallback!r})" if fallback else ""
    return ConversionError(f"required key is missing{also}", (name,))


def _structure_source(cls: type[Any], fields: tuple[_Field, ...]) -> str:
    """Write the structure hook of one model as straight-line Python.

    A generic loop over the field table costs about twice as much per object (see
    benchmarks/bench_parse.py), so, like attrs and cattrs themselves, the hook is generated once
    from the table. It fills the slots directly: the models have no validators or converters that
    ``__init__`` would run. The common case is the cheap one: a plain dict is told by ``type()``
    (``isinstance`` only for a subclass), keys are counted only when absent, and a list of models
    is read by the hook's own comprehension (through ``read_tuple`` only when it is not a list,
    or to name the item that failed).
    """
    lines = [
        "def structure_model(data):",
        "    if type(data) is not dict and not isinstance(data, dict):",
        "        raise _expected('an object', data)",
        "    missing = 0",
    ]
    for i, field in enumerate(fields):
        nullable = not field.required or field.fallback is not None
        is_tuple = field.kind.startswith("tuple[")
        v = f"f_{field.attr}"
        for j, name in enumerate(field.names):
            lines += [
                f"    {'if' if j == 0 else 'elif'} {name!r} in data:",
                f"        {v} = data[{name!r}]",
            ]
            if nullable and field.kind in _MODEL_KINDS:
                # PHP's json_encode writes an empty array for an empty object.
                lines.append(f"        if type({v}) is list and not {v}: {v} = None")
            skip = [f"{v} is None"] if nullable and not is_tuple else []
            if field.kind in _ALREADY_RIGHT:
                skip.append(_ALREADY_RIGHT[field.kind].format(v=v))
            indent = "        "
            if skip:
                lines.append(f"        if not ({' or '.join(skip)}):")
                indent += "    "
            read, error = f"read_{i}({v})", "exc"
            if _model_items(field.kind):
                read = f"tuple([item_{i}(x) for x in {v}]) if type({v}) is list else {read}"
                error = f"_item_error(read_{i}, {v}, exc)"
            lines += [
                f"{indent}try:",
                f"{indent}    {v} = {read}",
                f"{indent}except ConversionError as exc:",
                f"{indent}    raise {error}.under({name!r}) from None",
            ]
        lines.append("    else:")
        if field.required and field.fallback is None:
            lines.append(f"        raise _missing({field.names[0]!r})")
        else:
            lines += ["        missing += 1", f"        {v} = {'()' if is_tuple else 'None'}"]
    for field in fields:
        if field.fallback is not None:
            lines += [
                f"    if f_{field.attr} is None:",
                f"        if f_{field.fallback} is None:",
                f"            raise _missing({field.names[0]!r}, {field.fallback!r})",
                f"        f_{field.attr} = f_{field.fallback}",
            ]
    lines += [
        "    obj = _new(_cls)",
        *(f"    set_{f.attr}(obj, f_{f.attr})" for f in fields),
        # Every key was used when the ones present, one per field, are all there is.
        f"    set_extra(obj, {{}} if len(data) == {len(fields)} - missing"
        " else _leftovers(data, _names))",
        "    return obj",
    ]
    return "\n".join(lines) + "\n"


def _register_model(cls: type[Any], *fields: _Field) -> None:
    """Build and register the structure and unstructure hooks of one model."""
    attributes = [a.name for a in attrs.fields(cls)]
    if sorted(attributes) != sorted([*(f.attr for f in fields), "extra"]):
        raise TypeError(f"the field table of {cls.__name__} does not match its attributes")
    namespace: dict[str, Any] = {
        "ConversionError": ConversionError,
        "_expected": _expected,
        "_missing": _missing,
        "_leftovers": _leftovers,
        "_item_error": _item_error,
        "_new": object.__new__,
        "_cls": cls,
        "_names": tuple(f.names for f in fields),
    }
    for name in attributes:
        namespace[f"set_{name}"] = vars(cls)[name].__set__
    for i, field in enumerate(fields):
        namespace[f"read_{i}"] = _KINDS[field.kind][0]
        items = _model_items(field.kind)
        if items:
            namespace[f"item_{i}"] = _KINDS[items][0]
    source = _structure_source(cls, fields)
    filename = f"<vpsbg_support structure {cls.__qualname__}>"
    # Registered with linecache so tracebacks through the generated hook show its source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    dumps = tuple((f.attr, f.names[0], _KINDS[f.kind][1]) for f in fields)

    def unstructure_model(obj: Any) -> dict[str, Any]:
        out = dict(obj.extra)
        for attr, wire, dump in dumps:
            value = getattr(obj, attr)
            out[wire] = None if value is None else dump(value)
        return out

    read = namespace["structure_model"]
    _structure_hooks[cls] = read
    # Later tables can then use this model, and tuples of it, as a field kind.
    _KINDS[cls.__name__] = (read, unstructure_model)
    _MODEL_KINDS.add(cls.__name__)
    _KINDS[f"tuple[{cls.__name__}]"] = (_tuple_of(read), _dump_list(unstructure_model))


_register_model(
    Attachment,
    _field("id", "int", required=True),
    _field("name", "str", required=True),
    _field("size", "int"),
    _field("mime_type", "str", "mime_type", wire="mimeType"),
)
_register_model(
    TicketMessage,
    _field("id", "int"),
    _field("content", "str", "message"),
    _field("is_customer", "bool", "from_customer"),
    _field("created_at", "datetime"),
    _field("attachments", "tuple[Attachment]"),
    _field("user", "display_name"),
)
_register_model(
    Ticket,
    _field("id", "int", required=True),
    _field("status", "str", required=True),
    _field("subject", "str", required=True),
    _field("created_at", "datetime"),
    _field("updated_at", "datetime"),
    _field("department", "str"),
    _field("service_label", "str", "service"),
    _field("service_type", "str"),
    _field("service_id", "int"),
    _field("messages", "tuple[TicketMessage]"),
    _field("user", "display_name"),
)
_register_model(
    Department,
    _field("id", "int", required=True),
    _field("name", "str", required=True),
    _field("slug", "str", "key"),
)
_register_model(
    RelatedService,
    _field("id", "int", required=True),
    _field("type", "str"),
    _field("label", "str"),
)
_register_model(
    SupportPlan,
    _field("key", "str", "slug", required=True, fallback="name"),
    _field("name", "str"),
    _field("price", "decimal"),
    _field("price_with_vat", "decimal"),
    _field("status", "str"),
    _field("billing_cycles", "tuple[int]"),
)
_register_model(
    Promo,
    _field("code", "str"),
    _field("percentage", "decimal"),
    _field("minimum_billing_cycle", "int"),
)
_register_model(
    PaymentInformation,
    _field("last_4", "str"),
    _field("brand", "str"),
    _field("expiry_month", "str"),
    _field("expiry_year", "str"),
    _field("tx_hash", "str"),
    _field("tx_amount", "str"),
    _field("confirmed_at", "datetime"),
)
_register_model(
    OrderInvoice,
    _field("id", "int", required=True),
    _field("invoice_number", "str"),
    _field("created_at", "datetime"),
    _field("amount", "decimal"),
    _field("amount_with_vat", "decimal"),
    _field("type", "str"),
    _field("order_ids", "tuple[int]"),
)
_register_model(
    OrderService,
    _field("label", "str"),
    _field("sublabel", "str"),
    _field("period_from", "epoch"),
    _field("period_to", "epoch"),
    _field("is_period_changeable", "bool"),
    _field("service_id", "int"),
    _field("service_billing_cycle", "int"),
    _field("service_minimum_billing_cycle", "int"),
    _field("service_type", "str"),
    _field("amount", "decimal"),
    _field("amount_with_vat", "decimal"),
    _field("amount_sublabel", "str"),
    _field("promo", "Promo"),
)
_register_model(
    Order,
    _field("id", "int", required=True),
    _field("status", "str", required=True),
    _field("type", "str"),
    _field("tax_rate", "decimal"),
    _field("amount", "decimal"),
    _field("amount_with_vat", "decimal"),
    _field("amount_from_balance", "decimal"),
    _field("payment_method", "str"),
    _field("auto_pay", "bool"),
    _field("promo_applicable", "bool"),
    _field("created_at", "datetime"),
    _field("due_at", "datetime"),
    _field("payment_date", "datetime"),
    _field("invoices", "tuple[OrderInvoice]"),
    _field("promo", "Promo"),
    _field("payment_information", "PaymentInformation"),
    _field("services", "tuple[OrderService]"),
)


# --- pages ---------------------------------------------------------------------------------

#: Page attribute -> (envelope section, key in that section, reader).
_PAGE_FIELDS: dict[str, tuple[str, str, _Parse]] = {
    "current_page": ("meta", "current_page", _read_int),
    "last_page": ("meta", "last_page", _read_int),
    "per_page": ("meta", "per_page", _read_int),
    "total": ("meta", "total", _read_int),
    "next_url": ("links", "next", _read_str),
    "prev_url": ("links", "prev", _read_str),
}


def _section(envelope: dict[str, Any], name: str) -> dict[str, Any]:
    section = envelope.get(name)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise _expected("an object", section).under(name)
    return section


def _page_structure_hook(item_type: type[Any]) -> Callable[[Any], Page[Any]]:
    read_items = _tuple_of(_structure_hooks[item_type])

    def structure_page(data: Any) -> Page[Any]:
        if isinstance(data, list):
            return Page(items=read_items(data))
        if not isinstance(data, dict) or "data" not in data:
            raise _expected("an array, or an object with a 'data' array", data)
        if not isinstance(data["data"], list):
            raise _expected("an array", data["data"]).under("data")
        try:
            items = read_items(data["data"])
        except ConversionError as exc:
            raise exc.under("data") from None
        sections = {"links": _section(data, "links"), "meta": _section(data, "meta")}
        paging: dict[str, Any] = {}
        for attr, (section, key, read) in _PAGE_FIELDS.items():
            value = sections[section].get(key)
            try:
                paging[attr] = None if value is None else read(value)
            except ConversionError as exc:
                raise exc.under(key).under(section) from None
        extra = {k: v for k, v in data.items() if k not in ("data", "links", "meta")}
        for section, values in sections.items():
            mapped = {key for sec, key, _ in _PAGE_FIELDS.values() if sec == section}
            rest = {k: v for k, v in values.items() if k not in mapped}
            if rest:
                extra[section] = rest
        return Page(items=items, extra=extra, **paging)

    return structure_page


def _unstructure_page(page: Page[Any]) -> dict[str, Any]:
    out = {k: v for k, v in page.extra.items() if k not in ("links", "meta")}
    out["data"] = [converter.unstructure(item) for item in page.items]
    for section in ("links", "meta"):
        values = dict(page.extra.get(section) or {})
        for attr, (sec, key, _) in _PAGE_FIELDS.items():
            value = getattr(page, attr)
            if sec == section and value is not None:
                values[key] = value
        if values:
            out[section] = values
    return out


def _hook(read: _Parse) -> Callable[[Any, Any], Any]:
    """Adapt a one-argument reader to cattrs' ``(data, type)`` hook signature."""

    def hook(data: Any, _cl: Any) -> Any:
        return read(data)

    return hook


def _is_page(cl: Any) -> bool:
    return cl is Page or get_origin(cl) is Page


def _page_hook_factory(cl: Any) -> Callable[[Any, Any], Page[Any]]:
    args = get_args(cl)
    if len(args) != 1 or args[0] not in _structure_hooks:
        raise TypeError(f"cannot structure {cl!r}: use Page[<a model class>]")
    return _hook(_page_structure_hook(args[0]))


# --- the converter -------------------------------------------------------------------------

#: The one converter. Hooks for every model and for ``Page[Model]`` are registered on it.
converter = cattrs.Converter(detailed_validation=False)


_TYPE_KINDS: dict[Any, str] = {
    int: "int",
    str: "str",
    bool: "bool",
    Decimal: "decimal",
    datetime: "datetime",
    **{cls: cls.__name__ for cls in _structure_hooks},
}
for _type, _kind in _TYPE_KINDS.items():
    converter.register_structure_hook(_type, _hook(_KINDS[_kind][0]))
    converter.register_unstructure_hook(_type, _KINDS[_kind][1])
converter.register_structure_hook_factory(_is_page, _page_hook_factory)
converter.register_unstructure_hook_func(_is_page, _unstructure_page)


def structure(data: Any, cl: type[T]) -> T:
    """Turn decoded JSON into a model.

    Args:
        data: the decoded JSON body (``json.loads`` output).
        cl: the model class, e.g. ``Ticket`` or ``Order``; ``Page[Ticket]`` also works.

    Returns:
        An instance of ``cl``.

    Raises:
        ConversionError: ``data`` does not have the shape ``cl`` needs; the message names where.
    """
    hook = _structure_hooks.get(cl)
    if hook is not None:
        # The hook the converter holds for ``cl``, called without cattrs' dispatch on the
        # way (it raises only ConversionError; nothing here may hide a bug in it).
        return hook(data)  # type: ignore[no-any-return]
    if _is_page(cl):
        return converter.structure(data, cl)
    try:
        return converter.structure(data, cl)
    except ConversionError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        # cattrs' own hooks (e.g. for list[Ticket]) fail with built-in exceptions.
        raise ConversionError(f"cannot read as {cl!r}: {exc}") from None


def structure_list(data: Any, cl: type[T]) -> Page[T]:
    """Turn a decoded list response into a page of models.

    Args:
        data: a bare JSON array of items, or the ``{"data": [...], "links": ..., "meta": ...}``
            envelope (``links``, ``meta`` and any of their keys may be missing or null).
        cl: the item model class, e.g. ``Ticket``.

    Returns:
        A :class:`~vpsbg_support.models.Page` of ``cl``; paging fields are ``None`` when unknown.

    Raises:
        ConversionError: the body is neither shape, or an item is malformed; the message names
            where (e.g. ``data[2].id: expected an integer, got null``).
    """
    return converter.structure(data, Page[cl])  # type: ignore[valid-type]


def unstructure(obj: Any) -> Any:
    """Turn a model (or page, or list of them) back into JSON-ready data with wire names.

    Unknown keys kept in ``extra`` are merged back; money becomes an int or a float, timestamps
    ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"``, order periods epoch seconds.

    Args:
        obj: a model instance, a ``Page``, or a list/tuple of them.

    Returns:
        Data ``json.dumps`` accepts; ``structure(unstructure(x), type(x)) == x``.
    """
    return converter.unstructure(obj)


# The models' to_dict/to_json/from_dict are doors into this converter.
_wire.install(structure, unstructure)
