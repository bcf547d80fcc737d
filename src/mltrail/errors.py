"""Errors raised by mltrail.

The library raises these; the faces (CLI, server) render them. Every message says what was wrong,
names the offending value and, where there is one, the next thing to do.

    MltrailError                      base of everything mltrail raises on purpose
    ├── InvalidInput                  a value the user passed is not acceptable
    │   ├── InvalidKey                an empty, too long or unsafe metric/param/tag key
    │   ├── InvalidValue              a metric/param/tag value of the wrong type or size
    │   ├── ParamChanged              a param logged again with a different value
    │   └── FilterSyntaxError         a search filter or order-by that does not parse
    ├── NotFound                      an experiment, run, artifact or object that does not exist
    ├── AlreadyExists                 a name that is already taken
    ├── InvalidState                  the target exists but cannot take this operation
    │                                 (logging to a finished or deleted run, ...)
    ├── Unauthenticated               a server request with no token, or a wrong or expired one
    ├── PermissionDenied              a valid token whose role does not allow the operation
    ├── StoreError                    the store cannot be opened or used
    │   ├── StoreNotFound             no .mltrail project here and none was asked to be created
    │   ├── CorruptStore              a store folder or database that is not mltrail's, or damaged
    │   └── SchemaTooNew              a store written by a newer mltrail than this one
    └── IntegrityError                an object whose bytes no longer match its hash
"""

from __future__ import annotations


class MltrailError(Exception):
    """Base class of every error mltrail raises on purpose."""

    #: A stable machine-readable code, used by ``--json`` output and the server's error bodies.
    code = "MLTRAIL_ERROR"
    #: What the user can do about it; rendered on its own line by the CLI.
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class InvalidInput(MltrailError):
    """A value passed by the user is not acceptable."""

    code = "INVALID_PARAMETER_VALUE"


class InvalidKey(InvalidInput):
    """A metric, param or tag key that is empty, too long or unsafe."""


class InvalidValue(InvalidInput):
    """A metric, param or tag value of the wrong type or size."""


class ParamChanged(InvalidInput):
    """A param was logged again with a different value; params are immutable."""


class FilterSyntaxError(InvalidInput):
    """A search filter or order-by clause that does not parse."""

    def __init__(
        self,
        message: str,
        text: str = "",
        position: int | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        self.text = text
        self.position = position
        if position is not None and text:
            pointer = " " * position + "^"
            message = f"{message}\n  {text}\n  {pointer}"
        super().__init__(message, hint=hint)


class NotFound(MltrailError):
    """An experiment, run, artifact or object that does not exist."""

    code = "RESOURCE_DOES_NOT_EXIST"


class AlreadyExists(MltrailError):
    """A name that is already taken."""

    code = "RESOURCE_ALREADY_EXISTS"


class InvalidState(MltrailError):
    """The target exists but cannot take this operation in its current state."""

    code = "INVALID_STATE"


class Unauthenticated(MltrailError):
    """A server request without a token, or with a wrong, revoked or expired one (HTTP 401)."""

    code = "UNAUTHENTICATED"


class PermissionDenied(MltrailError):
    """A valid token whose role or permissions do not allow the operation (HTTP 403)."""

    code = "PERMISSION_DENIED"


class StoreError(MltrailError):
    """The store cannot be opened or used."""

    code = "STORE_ERROR"


class StoreNotFound(StoreError):
    """No .mltrail project was found from the working directory upward."""


class CorruptStore(StoreError):
    """A store folder or database that is not mltrail's, or is damaged."""


class SchemaTooNew(StoreError):
    """A store written by a newer version of mltrail."""


class IntegrityError(MltrailError):
    """An object whose content no longer matches its hash."""

    code = "DATA_CORRUPTION"
    #: The hash the damaged object is stored under, when known.
    object_hash: str | None = None


def error_from_code(
    code: str, message: str, hint: str | None = None, kind: str | None = None
) -> MltrailError:
    """Rebuild the error a server reported as ``{error_code, message, hint, kind}``.

    ``kind`` is the class name the server raised (``InvalidValue``, ``ParamChanged``...); it is
    used when it names a known subclass of the code's class, so callers can catch as precisely
    as with an embedded store.
    """
    cls = _BY_CODE.get(code, MltrailError)
    precise = _BY_NAME.get(kind or "")
    if precise is not None and issubclass(precise, cls):
        cls = precise
    error = cls.__new__(cls)
    MltrailError.__init__(error, message, hint=hint)
    if cls is MltrailError:
        error.code = code
    return error


def _subclasses(cls: type[MltrailError]) -> list[type[MltrailError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


_BY_CODE: dict[str, type[MltrailError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        NotFound,
        AlreadyExists,
        InvalidState,
        Unauthenticated,
        PermissionDenied,
        StoreError,
        IntegrityError,
    )
}
_BY_NAME: dict[str, type[MltrailError]] = {c.__name__: c for c in _subclasses(MltrailError)}
