"""``--demo`` data: an embedded ``FakeVPSBG`` with seeded tickets and attachments, no token needed.

``python -m vpsbg_support.demo`` runs ``vpsbg-support --demo export ./demo-export``.
"""

from __future__ import annotations

from vpsbg_support.testing import FakeVPSBG

#: The seed of the demo data: every demo run shows the same account.
DEMO_SEED = 7
#: Tickets served when the demo runs ``export``: enough to show the export's speed.
DEMO_EXPORT_TICKETS = 300
#: Tickets served for every other command (``tickets list``, ``plans``...): quick to start.
DEMO_TICKETS = 25
#: Generated attachments go up to 4 MiB; the demo caps them so an export stays quick and small.
MAX_DEMO_ATTACHMENT = 256 * 1024


def demo_server(tickets: int = DEMO_TICKETS) -> FakeVPSBG:
    """A fake VPSBG API seeded for demos (not started: use ``async with``).

    Args:
        tickets: how many tickets to generate (with messages and attachments).

    Returns:
        The FakeVPSBG; point a client at ``fake.url`` with ``fake.token``.
    """
    # No rate limit worth the name: the demo shows the client's speed, not the server's budget.
    fake = FakeVPSBG(seed=DEMO_SEED, tickets=tickets, rate_limit=1_000_000)
    with fake.state.lock:
        for ticket in fake.state.tickets:
            for message in ticket.messages:
                for attachment in message.attachments:
                    # Generated content follows the recorded size, so capping it is enough.
                    attachment.size = min(attachment.size, MAX_DEMO_ATTACHMENT)
    return fake


def main() -> int:
    """Run the demo export into ``./demo-export`` and print its summary.

    Returns:
        The command's exit status.
    """
    from vpsbg_support.cli import main as cli_main

    return cli_main(["--demo", "export", "./demo-export"])


if __name__ == "__main__":
    raise SystemExit(main())
