"""Public attrs models returned by the client: tickets, plans, orders, pages and events."""

from vpsbg_support.models.events import (
    CustomerReplied,
    StatusChanged,
    SupportReplied,
    TicketEvent,
    TicketOpened,
)
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
    "CustomerReplied",
    "Department",
    "Order",
    "OrderInvoice",
    "OrderService",
    "Page",
    "PaymentInformation",
    "Promo",
    "RelatedService",
    "StatusChanged",
    "SupportPlan",
    "SupportReplied",
    "Ticket",
    "TicketEvent",
    "TicketMessage",
    "TicketOpened",
]
