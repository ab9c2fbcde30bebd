"""``--demo`` data: an embedded ``FakeVPSBG`` with seeded tickets and attachments; no token.

The demo account is alive: a customer opens a ticket from the web panel now and then, and a
support agent answers every new customer message a few seconds later, so
``vpsbg-support --demo tickets watch`` has something to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from vpsbg_support import _constants as C
from vpsbg_support.testing import FakeState, FakeVPSBG

_AGENT_TICK = 0.5

_CUSTOMER_SUBJECTS = itertools.cycle(
    (
        ("Server unreachable after reboot", "My VPS does not answer ping since the reboot."),
        ("Invoice address change", "Please change the company address on my next invoice."),
        ("Reverse DNS for my IP", "Could you set the PTR record of my IP to mail.example.test?"),
    )
)


def demo_server(tickets: int = C.DEMO_TICKETS, *, live: bool = True) -> FakeVPSBG:
    """A fake VPSBG API seeded for demos (not started: use ``async with``).

    Args:
        tickets: how many tickets to generate (with messages and attachments).
        live: run a :class:`SupportAgent` while serving (a customer opening tickets, support
            answering them); False for a still account (the export demo).

    Returns:
        The FakeVPSBG; point a client at ``fake.url`` with ``fake.token``.
    """
    # No rate limit worth the name: the demo shows the client's speed, not the server's budget.
    kind = DemoVPSBG if live else FakeVPSBG
    fake = kind(seed=C.DEMO_SEED, tickets=tickets, rate_limit=1_000_000)
    with fake.state.lock:
        for ticket in fake.state.tickets:
            for message in ticket.messages:
                for attachment in message.attachments:
                    # Generated content follows the recorded size, so capping it is enough.
                    attachment.size = min(attachment.size, C.MAX_DEMO_ATTACHMENT)
        if fake.state.active_plan is not None:
            # One paid renewal, so ``orders list|show|wait`` have an order to show (200001).
            fake.state.settle_order(fake.state.renew(1).id)
    return fake


class SupportAgent:
    """Plays both other sides of the demo account on ``state``: a customer who opens a ticket
    every ``customer_every`` seconds, and staff who answer each customer message that arrives
    after the agent started, ``reply_delay`` seconds later.
    """

    def __init__(
        self,
        state: FakeState,
        *,
        reply_delay: float = C.DEMO_REPLY_DELAY,
        customer_every: float | None = C.DEMO_CUSTOMER_EVERY,
        first_ticket_after: float = C.DEMO_FIRST_CUSTOMER_TICKET,
    ) -> None:
        self.state = state
        self.reply_delay = reply_delay
        self.customer_every = customer_every
        self._next_ticket = time.monotonic() + first_ticket_after
        with state.lock:
            # What exists is history: only what comes later is answered.
            self._answered = {t.id: len(t.messages) for t in state.tickets}
        self._waiting: dict[int, float] = {}

    def step(self) -> None:
        """Do what is due now: open the customer's ticket, answer waiting messages."""
        now = time.monotonic()
        if self.customer_every is not None and now >= self._next_ticket:
            self._next_ticket = now + self.customer_every
            subject, message = next(_CUSTOMER_SUBJECTS)
            self.state.create_ticket(department_id=2, subject=subject, message=message)
        with self.state.lock:
            for ticket in self.state.tickets:
                done = self._answered.get(ticket.id, 0)
                if len(ticket.messages) <= done or not ticket.messages[-1].is_customer:
                    self._answered[ticket.id] = len(ticket.messages)
                    continue
                due = self._waiting.setdefault(ticket.id, now + self.reply_delay)
                if now >= due:
                    del self._waiting[ticket.id]
                    self.state.reply(
                        ticket.id,
                        f"Hello! This is the demo support team: we are looking into"
                        f' "{ticket.subject}" and will get back to you shortly.',
                        is_customer=False,
                    )
                    self._answered[ticket.id] = len(ticket.messages)

    async def run(self) -> None:
        """Step every half second until cancelled."""
        while True:
            self.step()
            await asyncio.sleep(_AGENT_TICK)


class DemoVPSBG(FakeVPSBG):
    """The demo's fake API: a ``FakeVPSBG`` with a :class:`SupportAgent` running while it serves."""

    _agent_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start serving, and the agent with it."""
        await super().start()
        self._agent_task = asyncio.create_task(SupportAgent(self.state).run())

    async def stop(self) -> None:
        """Stop the agent, then the server."""
        task, self._agent_task = self._agent_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()
