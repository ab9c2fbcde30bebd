"""``--demo`` data: an embedded ``FakeVPSBG`` with seeded tickets and attachments; no token."""

from __future__ import annotations

from vpsbg_support import _constants as C
from vpsbg_support.testing import FakeVPSBG


def demo_server(tickets: int = C.DEMO_TICKETS) -> FakeVPSBG:
    """A fake VPSBG API seeded for demos (not started: use ``async with``).

    Args:
        tickets: how many tickets to generate (with messages and attachments).

    Returns:
        The FakeVPSBG; point a client at ``fake.url`` with ``fake.token``.
    """
    # No rate limit worth the name: the demo shows the client's speed, not the server's budget.
    fake = FakeVPSBG(seed=C.DEMO_SEED, tickets=tickets, rate_limit=1_000_000)
    with fake.state.lock:
        for ticket in fake.state.tickets:
            for message in ticket.messages:
                for attachment in message.attachments:
                    # Generated content follows the recorded size, so capping it is enough.
                    attachment.size = min(attachment.size, C.MAX_DEMO_ATTACHMENT)
    return fake
