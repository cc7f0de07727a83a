"""Domain errors raised by services and selectors. Transports map them: the
consumers to protocol `error` codes, the DRF views to HTTP statuses."""

from __future__ import annotations


class ChatError(Exception):
    code = "server_error"
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(ChatError):
    """Missing, or not visible to the caller: the two look the same."""

    code = "not_found"
    http_status = 404


class Forbidden(ChatError):
    code = "forbidden"
    http_status = 403


class Invalid(ChatError):
    code = "bad_request"
    http_status = 400

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class RateLimited(ChatError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class TooLarge(ChatError):
    """Over a size limit or quota (HTTP 413)."""

    code = "bad_request"
    http_status = 413


class StoreUnavailable(ChatError):
    code = "server_error"
    http_status = 503
