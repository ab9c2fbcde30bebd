"""Public attrs models returned by the client: tickets, plans, orders and pages."""

from vpsbg_support.models.orders import (
    Order,
    OrderInvoice,
    OrderService,
    PaymentInformation,
    Promo,
)
from vpsbg_support.models.pages import Page
from vpsbg_support.models.plans import SupportPlan
from vpsbg_support.models.tickets import (
    Attachment,
    Department,
    RelatedService,
    Ticket,
    TicketMessage,
)

__all__ = [
    "Attachment",
    "Department",
    "Order",
    "OrderInvoice",
    "OrderService",
    "Page",
    "PaymentInformation",
    "Promo",
    "RelatedService",
    "SupportPlan",
    "Ticket",
    "TicketMessage",
]
