"""The parser of ``vpsbg-support`` and running one command: client set-up, errors to exits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from vpsbg_support import AsyncClient, __version__
from vpsbg_support import _constants as C
from vpsbg_support.cli import archive, export, orders, plans, tickets
from vpsbg_support.cli._app import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXIT_VALIDATION,
    PROG,
    CLIExit,
    Handler,
    OfflineHandler,
    Output,
    StdoutClosed,
    describe,
    exit_code_for,
    fail,
)
from vpsbg_support.cli._options import Commands, common_options
from vpsbg_support.errors import MAY_HAVE_REACHED_VPSBG, ConfigurationError, VPSBGError

T = TypeVar("T")

#: The command groups, in the order ``--help`` lists them; each module has ``register``.
GROUPS = (export, archive, tickets, plans, orders)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vpsbg-support``.

    Returns:
        The parser; each command sets ``handler`` on the parsed namespace.
    """
    common = common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="VPSBG support from the command line: export, tickets, support plans, orders.",
        epilog="Exit status: 0 ok, 1 error (also: a question answered no, nothing was sent),"
        " 2 usage, 3 auth, 4 invalid input, 5 not found, 6 network, 7 export incomplete,"
        " 130 interrupted. Errors are one plain-text line on stderr, with --json too.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(demo_tickets=C.DEMO_TICKETS, demo_live=True)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(subcommands, common)
    for group in GROUPS:
        group.register(commands)
    return parser


NO_TOKEN = (
    f"no API token: pass --token TOKEN or set {C.ENV_TOKEN} (create one in the VPSBG client area"
    " under your user name -> API tokens), or try --demo"
)


async def _run(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        # An empty --token (``--token "$T"`` with T unset) falls back to VPSBG_API_TOKEN, as
        # no --token does.
        token: str | None = args.token or None
        base_url: str | None = args.base_url
        if args.demo:
            from vpsbg_support.demo import demo_server

            fake = await stack.enter_async_context(
                demo_server(args.demo_tickets, live=args.demo_live)
            )
            token, base_url = fake.token, fake.url
        options: dict[str, Any] = {}
        if args.timeout is not None:
            options["timeout"] = args.timeout
        if args.max_retries is not None:
            options["max_retries"] = args.max_retries
        try:
            client = AsyncClient(token, base_url=base_url, **options)
        except ConfigurationError as exc:
            given = (token or os.environ.get(C.ENV_TOKEN) or "").strip()
            if not given:
                # The library's message is for Python callers: say it the CLI's way.
                raise CLIExit(NO_TOKEN, EXIT_AUTH) from None
            # A mangled token is a wrong token (3), as exit_code_for says; else the URL (2).
            code = EXIT_AUTH if exc.setting == "token" else EXIT_USAGE
            raise CLIExit(describe(exc), code) from None
        client = await stack.enter_async_context(client)
        handler: Handler = args.handler
        return await handler(client, args, Output(args.json))
    raise AssertionError("unreachable")  # pragma: no cover -- for mypy: the stack may swallow


def _cancelled_by_ctrl_c(command: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """``command``, made to end as Python 3.11's ``asyncio.run`` ends it on Ctrl-C.

    From 3.11, Ctrl-C cancels the command's task: the cancellation runs through the pipeline,
    which notes on it that a POST may have reached VPSBG, and the KeyboardInterrupt raised
    after carries that note in its context, for :func:`interrupted`. Python 3.10's
    ``asyncio.run`` lets Ctrl-C raise wherever the loop happens to be, and the note is lost:
    there the same is done by hand (a second Ctrl-C raises at once, as on 3.11).
    """
    if sys.version_info >= (3, 11) or threading.current_thread() is not threading.main_thread():
        return command
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return command  # somebody else's handler: theirs to keep
    return _cancel_on_sigint(command)


async def _cancel_on_sigint(command: Coroutine[Any, Any, T]) -> T:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    pressed = False

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal pressed
        if pressed:
            raise KeyboardInterrupt
        pressed = True
        loop.call_soon_threadsafe(task.cancel)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return await command
    except asyncio.CancelledError:
        if pressed:
            raise KeyboardInterrupt from None  # its __context__ keeps the cancellation's notes
        raise
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted(interrupt: BaseException, said: str | None = None) -> str:
    """The Ctrl-C line: "interrupted" (or what the command says instead, ``said``), plus the
    advice when a call that may have reached VPSBG (a purchase, renew, cancel, new ticket or
    reply) was cut by it."""
    seen: set[int] = set()
    current: BaseException | None = interrupt
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if MAY_HAVE_REACHED_VPSBG in getattr(current, "__notes__", ()):
            return f"{said or 'interrupted'}. {MAY_HAVE_REACHED_VPSBG}"
        current = current.__cause__ or current.__context__
    return said or "interrupted"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vpsbg-support`` (the console script).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (see :mod:`vpsbg_support.cli`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("token", "base_url", "timeout", "max_retries"):
        if not hasattr(args, name):
            setattr(args, name, None)
    for flag in ("json", "yes", "demo", "verbose"):
        if not hasattr(args, flag):
            setattr(args, flag, False)
    if args.demo and (args.token is not None or args.base_url is not None):
        # Ignoring them would show the demo's data to someone who asked for their account.
        parser.error("--demo runs against an embedded fake API: drop --token and --base-url")
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        logging.getLogger(C.LOGGER_NAME).setLevel(logging.DEBUG)
    offline: OfflineHandler | None = getattr(args, "offline", None)
    try:
        if offline is not None:  # reads local files only: no client, no token
            return offline(args, Output(args.json))
        return asyncio.run(_cancelled_by_ctrl_c(_run(args)))
    except KeyboardInterrupt as interrupt:
        # A command may say more (export: how to finish what was interrupted).
        return fail(interrupted(interrupt, getattr(args, "interrupted", None)), EXIT_INTERRUPTED)
    except StdoutClosed:
        # What Python's docs advise: point stdout at devnull so the flush at exit cannot fail
        # again, and leave without a word (the reader of a `| head` asked for no more).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_ERROR
    except CLIExit as exc:
        return fail(str(exc), exc.code)
    except VPSBGError as exc:
        return fail(describe(exc), exit_code_for(exc))
    except ValueError as exc:  # a value the client refuses that the options did not catch
        return fail(describe(exc), EXIT_VALIDATION)
    except OSError as exc:  # e.g. the export folder cannot be written
        return fail(describe(exc), EXIT_ERROR)
    except Exception as exc:
        return fail(f"unexpected {describe(exc)}", EXIT_ERROR)
