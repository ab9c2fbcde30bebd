"""Every tunable of the library in one place: base URL, env var names, timeouts, retry limits."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.vpsbg.eu/v1"
ENV_TOKEN = "VPSBG_API_TOKEN"
ENV_BASE_URL = "VPSBG_BASE_URL"
#: A PEM file (or a directory of them) of the CAs to trust, when the client gets no ca_bundle=;
#: then ``SSL_CERT_FILE`` is tried.
ENV_CA_BUNDLE = "VPSBG_CA_BUNDLE"
#: ``debug`` or ``info``: send the library's log to stderr (see ``vpsbg_support._logs``).
ENV_LOG = "VPSBG_LOG"
#: Hosts that may be reached over plain HTTP besides loopback addresses: RFC 6761 names that
#: never resolve to a third party (the embedded fake, test proxies).
PLAIN_HTTP_SUFFIXES = (".localhost", ".test", ".invalid")

#: Seconds allowed for one whole request (connect, send, read the body).
DEFAULT_TIMEOUT = 60.0
#: Seconds allowed to establish the TCP/TLS connection.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Retries after the first attempt (so 3 attempts in all by default).
DEFAULT_MAX_RETRIES = 2

#: Backoff: the first retry waits up to INITIAL_RETRY_DELAY, doubling up to MAX_RETRY_DELAY.
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: A Retry-After longer than this raises RateLimitError instead of sleeping; a wait one call was
#: told holds the client's other calls for at most this long, then the server is asked again.
MAX_RETRY_AFTER = 60.0

#: Statuses on which an idempotent request (GET/PUT/DELETE) is retried.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: Methods that have the same effect sent twice as once: retried after an ambiguous failure.
#: The one definition of "idempotent" (``Route.idempotent`` and the errors' advice read it).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

#: Largest decoded JSON body accepted (32 MiB); ``AsyncClient(max_response_size=...)`` tunes it.
#: Enforced while reading and while decompressing: a larger body raises ResponseTooLargeError.
MAX_RESPONSE_SIZE = 32 * 1024 * 1024
#: An error body (non-2xx) is kept up to this many bytes and the rest is dropped: it is only read
#: for its message.
MAX_ERROR_BODY = 64 * 1024
#: Content-Encodings this client undoes itself (bounded), and asks for on JSON calls.
ACCEPT_ENCODING = "gzip, deflate"

#: Headers a request id is read from, first found wins: VPSBG's own, then the spellings of
#: common proxies and CDNs (Cloudflare's ray id last).
REQUEST_ID_HEADERS = ("X-Request-Id", "Request-Id", "X-Correlation-Id", "CF-Ray")

#: Connections the client keeps open at once (aiohttp's default is 100).
CONNECTION_POOL_LIMIT = 100

#: iter_all stops after this many pages in a row with no ticket it has not yielded yet (a server
#: repeating a page); one such page can be honest: tickets opened meanwhile shift the pages.
MAX_STALE_PAGES = 3

#: A token shorter than this is not searched for in response bodies (it is still kept out of
#: messages and logs): VPSBG's tokens are far longer, and a test token such as "test" would
#: match ordinary text and rewrite the data.
MIN_TOKEN_SCRUBBED_FROM_BODIES = 16

#: Chunk size for streamed downloads and uploads.
CHUNK_SIZE = 64 * 1024
#: Upload read size: each read is one hop to a worker thread, so fewer, larger reads; memory
#: stays bounded by one read plus aiohttp's write buffer.
UPLOAD_READ_SIZE = 4 * CHUNK_SIZE

#: A download asks the OS to start writing its bytes to disk every this many bytes, so the
#: fsync before the atomic rename only waits for the last stretch, not the whole file.
WRITEBACK_EVERY = 16 * 1024 * 1024

#: Local validation limits, as documented by VPSBG.
SUBJECT_MIN, SUBJECT_MAX = 3, 255
MESSAGE_MIN = 5
RENEW_BILLING_CYCLES = (1, 3, 6, 12, 24)
PURCHASE_BILLING_CYCLE_RANGE = (1, 24)
#: The largest ``per_page`` the CLI sends. VPSBG documents neither a default nor a maximum; 100
#: is Laravel's usual cap (and FakeVPSBG's): a larger value is refused locally, not by a 422.
MAX_PER_PAGE = 100
#: The currency amounts are shown in when the API names none (its docs state none; VPSBG bills
#: in euros): a plan's or an order's ``extra["currency"]`` wins when the API sends one.
DEFAULT_CURRENCY = "EUR"

LOGGER_NAME = "vpsbg_support"

#: Blocking facade: seconds a task cancelled by Ctrl-C may take to clean up before re-raising.
LOOP_CANCEL_GRACE = 2.0
#: Blocking facade: seconds allowed for close() to close the client and join the loop thread.
LOOP_CLOSE_TIMEOUT = 10.0
#: Blocking facade: seconds the client's loop may sit undriven after a call run on the caller's
#: thread before the loop's own thread takes it back to run timers (keep-alive, connection
#: closes) and leftover work; a call after that costs one hand-over to get the loop back.
LOOP_IDLE_HANDBACK = 0.05

#: ``vpsbg-support export --concurrency``'s default: requests in flight at once (the same as
#: ``export_tickets(concurrency=8)``).
EXPORT_CONCURRENCY = 8

#: --demo: the seed of the demo data: every demo run shows the same account.
DEMO_SEED = 7
#: --demo: the source an archive written from the demo records (its URL changes every run).
DEMO_SOURCE = f"vpsbg-support --demo (seed {DEMO_SEED})"
#: --demo: tickets served when the demo runs ``export``: enough to show the export's speed.
DEMO_EXPORT_TICKETS = 300
#: --demo: tickets served for every other command (``tickets list``, ``plans``...): quick to start.
DEMO_TICKETS = 25
#: --demo: generated attachments go up to 4 MiB; the demo caps them so an export stays quick.
MAX_DEMO_ATTACHMENT = 256 * 1024
#: --demo: seconds the demo's support agent takes to answer a new customer message.
DEMO_REPLY_DELAY = 3.0
#: --demo: seconds between the tickets the demo's customer opens, and before the first one.
DEMO_CUSTOMER_EVERY = 20.0
DEMO_FIRST_CUSTOMER_TICKET = 4.0

#: Polling (``tickets.watch``, ``tickets.wait_for_reply``, ``orders.wait``): while nothing
#: changes the pause between polls grows by this factor, from the ``interval`` asked for (a
#: floor) up to ``interval * POLL_MAX_BACKOFF`` (or the ``max_interval`` given).
POLL_BACKOFF_FACTOR = 1.5
POLL_MAX_BACKOFF = 4.0
#: The smallest ``interval`` a poll accepts, in seconds: a floor against a busy loop.
POLL_MIN_INTERVAL = 0.01
#: Default seconds between polls of ``tickets.watch``, ``wait_for_reply`` and ``orders.wait``.
WATCH_INTERVAL = 30.0
WAIT_REPLY_INTERVAL = 30.0
ORDER_WAIT_INTERVAL = 5.0
#: ``tickets.watch`` lists tickets this many per page, so that most accounts cost one request.
WATCH_PER_PAGE = 100
#: A ticket read is "settled" (a later change in the same second of its ``updated_at`` cannot
#: hide) when that second ended at least this long before the server may have read it: for the
#: clock stamping ``updated_at`` and the one stamping ``Date`` to differ by.
SETTLE_MARGIN = 1.0
#: Without a usable ``Date`` header, this machine's clock stands in for the server's, less this.
CLOCK_MARGIN = 5.0

#: The archive: attachments go under this folder, one sub-folder per ticket.
ARCHIVE_ATTACHMENTS_DIR = "attachments"
#: The archive reads files to hash them in chunks of this size.
ARCHIVE_HASH_CHUNK = 1024 * 1024
#: The export commits its work to ``archive.sqlite`` at most this often (seconds): a crash of
#: the process loses nothing committed, a power cut loses at most this much work, redone.
ARCHIVE_COMMIT_INTERVAL = 0.25
#: Hits returned by an archive search unless a limit is given.
ARCHIVE_SEARCH_LIMIT = 20
#: The HTML archive sanitises message bodies (nh3) and turns the CSV's into text on this many
#: worker processes: both hold the GIL, so threads would not help. 1: none, all done here.
HTML_RENDER_PROCESSES = 2
#: Message bodies sent to a worker at once, at least: fewer are cleaned in the calling process,
#: so a re-run that rewrites a few pages starts no worker (starting one costs ~0.3 s of CPU).
HTML_RENDER_CHUNK = 512
