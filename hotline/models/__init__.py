"""All tables; importing this module registers them on ``Base.metadata``."""

from hotline.models.areas import Area
from hotline.models.audit import AuditLog
from hotline.models.categories import Category
from hotline.models.rules import RoutingRule, SlaPolicy
from hotline.models.tickets import Assignment, CallbackAttempt, Extension, Ticket, TicketEvent
from hotline.models.units import Unit, unit_areas
from hotline.models.users import ApiToken, User, user_grids

__all__ = [
    "ApiToken",
    "Area",
    "Assignment",
    "AuditLog",
    "CallbackAttempt",
    "Category",
    "Extension",
    "RoutingRule",
    "SlaPolicy",
    "Ticket",
    "TicketEvent",
    "Unit",
    "User",
    "unit_areas",
    "user_grids",
]
