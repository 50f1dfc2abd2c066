"""Problems the API answers with a 4xx/5xx: `{"error": code, "detail": one sentence naming the problem}`."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.detail}


class InvalidRequestError(ApiError):
    status = 400
    code = "invalid_request"


class InvalidTokenError(ApiError):
    status = 401
    code = "invalid_token"

    def __init__(self, detail: str) -> None:
        # RFC 6750 §3: the challenge names the error; the description is the same sentence as the JSON body's.
        description = detail.replace('"', "'")
        challenge = f'Bearer realm="selfnest-api", error="invalid_token", error_description="{description}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class MissingTokenError(ApiError):
    status = 401
    code = "missing_token"

    def __init__(self, detail: str) -> None:
        # RFC 6750 §3.1: a request without credentials gets the bare challenge, no error code.
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="selfnest-api"'})


class ForbiddenError(ApiError):
    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(ApiError):
    status = 405
    code = "method_not_allowed"


class RequestTimeoutError(ApiError):
    status = 408
    code = "request_timeout"


class ConflictError(ApiError):
    status = 409
    code = "conflict"


class LengthRequiredError(ApiError):
    status = 411
    code = "length_required"


class PayloadTooLargeError(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequestsError(ApiError):
    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after_seconds: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after_seconds)} if retry_after_seconds is not None else None
        super().__init__(detail, headers=headers)


class MethodNotImplementedError(ApiError):
    status = 501
    code = "not_implemented"


class ServiceUnavailableError(ApiError):
    status = 503
    code = "service_unavailable"
