"""Resource groups of the async client: ``client.tickets``, ``client.plans``, ``client.orders``."""

from vpsbg_support.resources.orders import AsyncOrders
from vpsbg_support.resources.plans import AsyncPlans
from vpsbg_support.resources.tickets import AsyncTickets

__all__ = ["AsyncOrders", "AsyncPlans", "AsyncTickets"]
