"""``VPSBG_LOG=debug|info``: the library's log on stderr, switched on without writing code.

The ``vpsbg_support`` logger says, for each HTTP attempt, the method, the path with its query,
the status, the request id, the attempt number, and why a request is retried or given up on. It
never logs headers or bodies, so never the token. Without ``VPSBG_LOG`` nothing is configured:
the logger stays silent unless the application's own logging config says otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from vpsbg_support import _constants as C

__all__ = ["configure_from_env"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler ``VPSBG_LOG`` adds (recognised so that it is added once)."""


def configure_from_env(environ: Mapping[str, str] = os.environ) -> None:
    """Send the library's log to stderr at the level ``VPSBG_LOG`` names (``debug`` or
    ``info``, any case); do nothing when it is unset or names another level."""
    level = _LEVELS.get(environ.get(C.ENV_LOG, "").strip().lower())
    if level is None:
        return
    logger = logging.getLogger(C.LOGGER_NAME)
    logger.setLevel(level)
    if not any(isinstance(handler, _EnvHandler) for handler in logger.handlers):
        handler = _EnvHandler()  # stderr
        handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
        logger.addHandler(handler)
