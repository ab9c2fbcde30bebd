"""Resource groups of the async client: ``client.tickets`` and ``client.plans``."""

from vpsbg_support.resources.plans import AsyncPlans
from vpsbg_support.resources.tickets import AsyncTickets

__all__ = ["AsyncPlans", "AsyncTickets"]
