"""Python client for the VPSBG support API: tickets, attachments and support plans.

``AsyncClient`` is the implementation; ``Client`` is its generated blocking twin.
"""

from vpsbg_support import errors
from vpsbg_support._client import AsyncClient
from vpsbg_support._filenames import safe_filename
from vpsbg_support._logs import configure_from_env as _configure_logging_from_env
from vpsbg_support._loop_thread import DeadlockError, LoopClosedError
from vpsbg_support._ratelimit import RateLimitSnapshot
from vpsbg_support._retry import RetryPolicy
from vpsbg_support._sync import Client, SyncAttachmentStream
from vpsbg_support._version import __version__
from vpsbg_support.errors import (
    MAY_HAVE_REACHED_VPSBG,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BodyNotKeptError,
    ClientClosedError,
    ConfigurationError,
    DownloadError,
    ExportError,
    InternalServerError,
    InvalidParameterError,
    LockedError,
    NotFoundError,
    OrderCancelledError,
    OtherSourceError,
    PermissionDeniedError,
    RateLimitedLocallyError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    TLSVerificationError,
    UnprocessableEntityError,
    VPSBGError,
    WaitTimeoutError,
    WrongEventLoopError,
)
from vpsbg_support.hooks import RequestInfo, ResponseInfo
from vpsbg_support.models import (
    Attachment,
    CustomerReplied,
    Department,
    Order,
    OrderInvoice,
    OrderService,
    Page,
    PaymentInformation,
    Promo,
    RelatedService,
    StatusChanged,
    SupportPlan,
    SupportReplied,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketOpened,
)
from vpsbg_support.resources.tickets import AttachmentStream
from vpsbg_support.responses import RawResponse

__all__ = [
    "MAY_HAVE_REACHED_VPSBG",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "Attachment",
    "AttachmentStream",
    "AuthenticationError",
    "BadRequestError",
    "BodyNotKeptError",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "CustomerReplied",
    "DeadlockError",
    "Department",
    "DownloadError",
    "ExportError",
    "InternalServerError",
    "InvalidParameterError",
    "LoopClosedError",
    "LockedError",
    "NotFoundError",
    "OtherSourceError",
    "Order",
    "OrderCancelledError",
    "OrderInvoice",
    "OrderService",
    "Page",
    "PaymentInformation",
    "PermissionDeniedError",
    "Promo",
    "RateLimitError",
    "RateLimitSnapshot",
    "RawResponse",
    "RequestInfo",
    "ResponseInfo",
    "RateLimitedLocallyError",
    "RelatedService",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "StatusChanged",
    "SupportPlan",
    "SupportReplied",
    "SyncAttachmentStream",
    "Ticket",
    "TicketEvent",
    "TLSVerificationError",
    "TicketMessage",
    "TicketOpened",
    "UnprocessableEntityError",
    "VPSBGError",
    "WaitTimeoutError",
    "WrongEventLoopError",
    "__version__",
    "errors",
    "safe_filename",
]

_configure_logging_from_env()
