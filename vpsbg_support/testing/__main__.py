"""``python -m vpsbg_support.testing``: serve the fake VPSBG API from a shell until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

from vpsbg_support._constants import ENV_BASE_URL, ENV_TOKEN
from vpsbg_support.testing._app import FakeVPSBG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vpsbg_support.testing",
        description="Serve a fake VPSBG support API with seeded tickets (demos, manual tests).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port, 0 for any (8080)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (0)")
    parser.add_argument("--tickets", type=int, default=25, help="tickets to generate (25)")
    parser.add_argument("--rate-limit", type=int, default=600, help="requests per minute (600)")
    parser.add_argument(
        "--list-style", choices=("envelope", "array"), default="envelope", help="list body shape"
    )
    parser.add_argument(
        "--wire-style",
        choices=("schema", "documented"),
        default="schema",
        help="ticket JSON as the documented schema, or as the docs' drifting examples",
    )
    return parser


async def _serve(fake: FakeVPSBG) -> None:
    async with fake:
        print(f"Fake VPSBG API at {fake.url}", flush=True)
        print(f"  write token:     {fake.token}", flush=True)
        print(f"  read-only token: {fake.read_only_token}", flush=True)
        print(f"  try: export {ENV_BASE_URL}={fake.url} {ENV_TOKEN}={fake.token}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake server until interrupted.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status (0 after Ctrl-C).
    """
    args = _parser().parse_args(argv)
    fake = FakeVPSBG(
        seed=args.seed,
        tickets=args.tickets,
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        list_style=args.list_style,
        wire_style=args.wire_style,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(fake))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
