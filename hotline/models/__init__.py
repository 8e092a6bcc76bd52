"""All tables; importing this module registers them on ``Base.metadata``."""

from hotline.models.analysis import AnalysisReport, EarlyWarning, HotIssue, HotIssueTicket
from hotline.models.areas import Area
from hotline.models.attachments import Attachment
from hotline.models.audit import AuditLog
from hotline.models.calendar import CalendarDay, CalendarYear
from hotline.models.calls import IncomingCall
from hotline.models.categories import Category
from hotline.models.citizens import CitizenSession, Open311Key, OutboxMessage, VerificationCode
from hotline.models.knowledge import KnowledgeArticle
from hotline.models.notifications import Notification
from hotline.models.rankings import RankingRow, RankingSnapshot
from hotline.models.retention import RetentionRun
from hotline.models.rules import RoutingRule, SlaPolicy
from hotline.models.settings import ReferenceVersion, Setting
from hotline.models.storage import Blob, Heartbeat, ModelActivation, ModelRetrain, ModelVersion
from hotline.models.supervision import (
    Inspection,
    JointMeeting,
    MeetingItem,
    Referral,
    ReviewRule,
    Summons,
    SummonsFiring,
)
from hotline.models.tickets import (
    Assignment,
    CallbackAttempt,
    Extension,
    Ticket,
    TicketEvent,
    TimerFiring,
)
from hotline.models.units import Unit, unit_areas
from hotline.models.users import ApiToken, User, UserSession, user_grids

__all__ = [
    "AnalysisReport",
    "EarlyWarning",
    "HotIssue",
    "HotIssueTicket",
    "ApiToken",
    "Area",
    "Assignment",
    "Attachment",
    "AuditLog",
    "Blob",
    "CalendarDay",
    "CalendarYear",
    "CallbackAttempt",
    "Category",
    "CitizenSession",
    "Extension",
    "Heartbeat",
    "IncomingCall",
    "Inspection",
    "JointMeeting",
    "MeetingItem",
    "Referral",
    "ReviewRule",
    "Summons",
    "SummonsFiring",
    "KnowledgeArticle",
    "ModelActivation",
    "ModelRetrain",
    "ModelVersion",
    "RetentionRun",
    "Notification",
    "Open311Key",
    "OutboxMessage",
    "RankingRow",
    "RankingSnapshot",
    "ReferenceVersion",
    "RoutingRule",
    "Setting",
    "SlaPolicy",
    "Ticket",
    "TicketEvent",
    "TimerFiring",
    "Unit",
    "User",
    "VerificationCode",
    "UserSession",
    "unit_areas",
    "user_grids",
]
