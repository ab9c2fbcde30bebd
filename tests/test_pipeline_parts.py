"""The pipeline's pure parts, without a server: the shared Retry-After window, final failures,
error builders, request ids, the redactor and route paths."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from vpsbg_support import _routes as R
from vpsbg_support._failures import Failure, body_failure, rate_limited_locally, status_failure
from vpsbg_support._pipeline import Response
from vpsbg_support._ratelimit import RateBudget
from vpsbg_support._redact import Redactor
from vpsbg_support._retry import FailureKind, RetryPolicy, decide
from vpsbg_support.errors import (
    MAY_HAVE_REACHED_VPSBG,
    APIConnectionError,
    InternalServerError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
)
from vpsbg_support.responses import json_body

TOKEN = "PARTS-SECRET-TOKEN-0123456789"


def test_a_shared_retry_after_holds_for_at_most_max_shared_wait() -> None:
    budget = RateBudget(max_shared_wait=60)
    assert budget.ask(0.0) == 0.0
    budget.done(0.0, 503, {"Retry-After": "86400"})
    assert budget.ask(30.0) == pytest.approx(86370.0)  # held: the full wait, to refuse it
    assert budget.ask(59.9) == pytest.approx(86340.1)
    assert budget.ask(60.0) == 0.0  # after max_shared_wait: the server is asked again


def test_a_short_retry_after_holds_exactly_its_length() -> None:
    budget = RateBudget(max_shared_wait=60)
    budget.ask(0.0)
    budget.done(0.0, 429, {"Retry-After": "2"})
    assert budget.ask(1.0) == pytest.approx(1.0)
    assert budget.ask(2.0) == 0.0


def test_a_retry_after_on_a_2xx_holds_nothing() -> None:
    budget = RateBudget()
    budget.ask(0.0)
    budget.done(0.0, 200, {"Retry-After": "30"})
    assert budget.ask(1.0) == 0.0


def test_a_final_failure_is_never_retried_whatever_the_method() -> None:
    policy = RetryPolicy(max_retries=5)
    for method in ("GET", "POST"):
        d = decide(method=method, attempt=0, policy=policy, kind=FailureKind.FINAL)
        assert not d.retry


def test_retry_policy_refuses_a_negative_sleep_budget() -> None:
    with pytest.raises(ValueError, match="sleep_budget"):
        RetryPolicy(sleep_budget=-1)
    assert RetryPolicy(sleep_budget=0).sleep_budget == 0


def test_a_local_refusal_claims_no_status() -> None:
    error = rate_limited_locally(30.0, "that exceeds it", "GET", "https://x/v1/support/plans")
    assert isinstance(error, RateLimitError) and error.status is None
    assert error.request_sent is False and error.retry_after == 30.0
    assert "HTTP" not in str(error) and "not sent" in str(error)


@pytest.mark.parametrize(
    ("status", "may_have_acted"), [(408, False), (429, False), (500, True), (503, True)]
)
def test_which_statuses_say_the_server_may_have_acted(status: int, may_have_acted: bool) -> None:
    failure = status_failure(status, None, b"", {}, "DELETE", "u", Redactor(TOKEN))
    assert failure.may_have_acted is may_have_acted


def test_a_transport_failure_before_sending_did_not_act() -> None:
    error = APIConnectionError("x")
    assert not Failure(FailureKind.NOT_SENT, error).may_have_acted
    assert Failure(FailureKind.AMBIGUOUS, error).may_have_acted


def test_status_errors_are_built_from_scrubbed_bytes_only() -> None:
    redact = Redactor(TOKEN)
    raw = redact.data(b'{"message": "bad token ' + TOKEN.encode() + b'"}')
    failure = status_failure(503, "Busy", raw, {"Retry-After": "5"}, "POST", "u", redact)
    assert isinstance(failure.error, InternalServerError)
    assert failure.retry_after == 5.0 and failure.status == 503
    assert TOKEN not in repr(vars(failure.error)) and MAY_HAVE_REACHED_VPSBG in str(failure.error)


def test_a_body_too_large_is_final_and_a_cut_one_may_be_retried() -> None:
    big = body_failure("too_large", "passed", 200, "GET", "u", limit=10)
    assert big.kind is FailureKind.FINAL and isinstance(big.error, ResponseTooLargeError)
    assert big.error.limit == 10
    cut = body_failure("cut", "ended early", 200, "POST", "u")
    assert cut.kind is FailureKind.AMBIGUOUS and isinstance(cut.error, ResponseDecodeError)
    assert cut.error.request_sent and MAY_HAVE_REACHED_VPSBG in str(cut.error)
    assert body_failure("corrupt", "bad", 200, "GET", "u").kind is FailureKind.FINAL


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Request-ID": "a", "CF-Ray": "z"}, "a"),
        ({"Request-Id": "b", "X-Correlation-Id": "c"}, "b"),
        ({"X-Correlation-Id": "c", "CF-Ray": "z"}, "c"),
        ({"CF-Ray": "z"}, "z"),
        ({}, None),
    ],
)
def test_the_request_id_comes_from_the_first_known_header(
    headers: dict[str, str], expected: str | None
) -> None:
    proxy = CIMultiDictProxy(CIMultiDict(headers))
    assert Response(200, proxy, b"", "GET", "u").request_id == expected


def test_the_redactor_scrubs_text_bytes_headers_and_php_escapes() -> None:
    token = "12|abc/def-ghi-jkl-mno"
    redact = Redactor(token)
    assert redact.text(f"Bearer {token}") == "Bearer ***"
    assert redact.data(token.replace("/", "\\/").encode()) == b"***"
    assert redact.headers([("X-Echo", token), ("Set-Cookie", "s")]) == {"X-Echo": "***"}
    assert redact.in_headers({"X": token}) and not redact.in_headers({"X": "y"})
    assert token not in repr(redact)


def test_route_paths_quote_text_ids_and_keep_int_ids() -> None:
    assert R.TICKETS_GET.format_path({"ticket_id": 216}) == "/support/tickets/216"
    assert R.TICKETS_GET.format_path({"ticket_id": "../x"}) == "/support/tickets/..%2Fx"
    # A text id after an int one is quoted too; a route without parameters needs none.
    mixed = R.TICKETS_ATTACHMENT.format_path({"ticket_id": 1, "attachment_id": "a/b"})
    assert mixed == "/support/tickets/1/attachments/a%2Fb"
    assert R.TICKETS_LIST.format_path() == "/support/tickets"
    assert R.TICKETS_GET.idempotent and not R.PLANS_RENEW.idempotent
    assert R.method_is_idempotent("delete") and not R.method_is_idempotent(None)


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "utf-16", "utf-32"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_json_body_is_read_in_any_encoding_json_loads_reads(encoding: str) -> None:
    # A lone surrogate both escaped and raw: json.loads(bytes) lets the raw one through.
    body = '{"subject": "сървър \\ud800", "raw": "\ud800"}'.encode(encoding, "surrogatepass")
    expected = {"subject": "сървър \ud800", "raw": "\ud800"}
    assert json_body(body, 200, "GET", "u") == json.loads(body) == expected


@pytest.mark.parametrize("body", [b'{"a": "\xff"}', b"{\x00}", b"\x00{}", b"[1, 2"])
def test_a_body_json_loads_refuses_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(ResponseDecodeError):
        json_body(body, 200, "GET", "u")
