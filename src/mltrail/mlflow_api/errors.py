"""mltrail's errors as MLflow reports them: its error codes and their HTTP statuses.

The mlflow client acts on the code (``RESOURCE_DOES_NOT_EXIST`` from ``get_experiment_by_name``
means "no such experiment") and retries the statuses of passing trouble (500, 503), so a
permanent mistake must never carry one of those.
"""

from __future__ import annotations

import logging
import secrets

from mltrail.errors import InvalidInput, MltrailError

log = logging.getLogger("mltrail.mlflow_api")

#: MLflow's HTTP status of each error code this API answers with (mlflow/exceptions.py).
STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INTERNAL_ERROR": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}
_CODES = {
    # MLflow says INVALID_PARAMETER_VALUE where mltrail says the target cannot take the call now
    # (MLflow's INVALID_STATE is a 500, which clients would retry in vain).
    "INVALID_STATE": "INVALID_PARAMETER_VALUE",
    "STORE_ERROR": "TEMPORARILY_UNAVAILABLE",
    "DATA_CORRUPTION": "DATA_LOSS",
}


class NotServed(MltrailError):
    """An MLflow endpoint mltrail does not serve (HTTP 501, MLflow's NOT_IMPLEMENTED)."""

    code = "NOT_IMPLEMENTED"


class NoEndpoint(MltrailError):
    """No MLflow endpoint at this path (HTTP 404, MLflow's ENDPOINT_NOT_FOUND)."""

    code = "ENDPOINT_NOT_FOUND"


def describe(exc: Exception) -> tuple[int, str, str]:
    """``(HTTP status, MLflow error code, message)`` of an error raised serving an MLflow call.

    The message carries mltrail's hint, so the user reading the client's exception sees what
    to do. An unexpected error is logged with an id, and only the id is sent.
    """
    import sqlalchemy.exc

    if isinstance(exc, MltrailError):
        code = _CODES.get(exc.code, exc.code)
        if code not in STATUS:
            code = "INVALID_PARAMETER_VALUE" if isinstance(exc, InvalidInput) else "INTERNAL_ERROR"
        message = f"{exc.message} {exc.hint}" if exc.hint else exc.message
    elif isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        log.warning("database error on an MLflow call: %s", exc)
        code, message = "TEMPORARILY_UNAVAILABLE", "the metadata database is unavailable"
    else:
        request_id = secrets.token_hex(6)
        log.error("MLflow call failed (request id %s)", request_id, exc_info=exc)
        code = "INTERNAL_ERROR"
        message = f"the server failed on this request (request id {request_id})"
    return STATUS[code], code, message
