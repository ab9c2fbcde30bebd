"""What every resource shares: hand a call to the pipeline, turn the JSON into models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from vpsbg_support._convert import ConversionError, structure, structure_list
from vpsbg_support._http import MultipartBody
from vpsbg_support._pipeline import Pipeline, Response
from vpsbg_support._routes import Route
from vpsbg_support.errors import ResponseDecodeError
from vpsbg_support.models import Page
from vpsbg_support.responses import RawResponse

T = TypeVar("T")


class AsyncResource:
    """Base of the resource groups; holds the pipeline and nothing else."""

    def __init__(self, transport: Pipeline) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self._transport.base_url!r}>"

    async def _request(
        self,
        route: Route,
        *,
        path_params: Mapping[str, int | str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        multipart: MultipartBody | None = None,
    ) -> Response:
        return await self._transport.request(
            route,
            path_params=path_params,
            params=params,
            json_body=json_body,
            multipart=multipart,
        )

    @staticmethod
    def _structure(response: Response, cl: type[T]) -> T:
        data = response.json()
        try:
            return structure(data, cl)
        except ConversionError as exc:
            raise _decode_error(response, cl, exc) from None

    @staticmethod
    def _structure_optional(response: Response, cl: type[T]) -> T | None:
        """For endpoints that answer an object or 204/empty: None when there is no body."""
        if response.status == 204 or not response.body.strip():
            return None
        return AsyncResource._structure(response, cl)

    @staticmethod
    def _structure_page(response: Response, cl: type[T]) -> Page[T]:
        data = response.json()
        try:
            return structure_list(data, cl)
        except ConversionError as exc:
            raise _decode_error(response, cl, exc) from None


def raw_response(response: Response, parse: Callable[[Response], T]) -> RawResponse[T]:
    """The public raw view of ``response``; ``parse`` makes the plain call's result from it."""
    return RawResponse(
        status_code=response.status,
        headers=response.headers,
        content=response.body,
        method=response.method,
        url=response.url,
        request_id=response.request_id,
        elapsed=response.elapsed,
        retries_taken=response.retries_taken,
        parse=lambda: parse(response),
    )


def _decode_error(response: Response, cl: type[Any], exc: ConversionError) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"Could not read the {cl.__name__} in the response to {response.method} {response.url}:"
        f" {exc}",
        status=response.status,
        body=response.body,
        method=response.method,
        url=response.url,
    )
