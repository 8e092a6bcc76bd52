"""Errors with a stable code for programs and a Chinese message for people.

Every refusal the application makes is one of these; the API turns them into its error
envelope ``{"success": false, "error": {"code", "message", "details"}}``.
"""

#: What people are told when the server failed, and when another change to a ticket won.
INTERNAL_ERROR = "服务器内部错误，操作未生效，请稍后重试"
STALE_MESSAGE = "工单已被他人同时处理，本次操作未生效，请刷新后重试"


class HotlineError(Exception):
    status = 400
    code = "BAD_REQUEST"

    #: Seconds after which a retry may succeed (sent as ``Retry-After``); None: not a wait.
    retry_after = None

    def __init__(self, message, *, code=None, details=None, retry_after=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}
        if retry_after is not None:
            self.retry_after = max(1, int(retry_after))

    def to_dict(self):
        return {"code": self.code, "message": self.message, "details": self.details}

    def headers(self):
        """HTTP headers that go with the refusal (``Retry-After`` for a wait)."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


def stale_conflict():
    """The refusal of a change that lost the race for a ticket (its version moved on)."""
    return Conflict(STALE_MESSAGE, code="TICKET_VERSION_CONFLICT")


class ValidationFailed(HotlineError):
    """The request is well-formed but its values are not acceptable; ``details`` maps each
    offending field to its message."""

    status = 422
    code = "VALIDATION_FAILED"


class AuthRequired(HotlineError):
    status = 401
    code = "AUTH_REQUIRED"


class Forbidden(HotlineError):
    status = 403
    code = "FORBIDDEN"


class NotFound(HotlineError):
    status = 404
    code = "NOT_FOUND"


class Conflict(HotlineError):
    """The ticket is not in a state that allows the operation, or changed meanwhile."""

    status = 409
    code = "CONFLICT"


class UnsupportedMediaType(HotlineError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class PayloadTooLarge(HotlineError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class TooManyRequests(HotlineError):
    status = 429
    code = "TOO_MANY_REQUESTS"


class ServiceUnavailable(HotlineError):
    """A part the request needs (the database, the attachment store) is away for now; the
    same request may be sent again after ``retry_after`` seconds."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
    retry_after = 5
