"""The public surface of ``mltrail``: complete, documented, and cheap to import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import mltrail


def test_all_names_resolve():
    for name in mltrail.__all__:
        assert getattr(mltrail, name) is not None, name


def test_fluent_functions_are_all_exported():
    from mltrail.tracking import fluent

    public = {
        name
        for name, obj in vars(fluent).items()
        if inspect.isfunction(obj)
        and obj.__module__ == fluent.__name__
        and not name.startswith("_")
    }
    assert public - {"get_client"} <= set(mltrail.__all__)


def test_public_functions_have_docstrings():
    for name in mltrail.__all__:
        obj = getattr(mltrail, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name


def test_import_is_light():
    code = (
        "import sys, mltrail; "
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'rich', 'blake3', 'mltrail.tracking') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mltrail.nope  # noqa: B018


def test_data_subpackage_is_an_attribute():
    code = "import mltrail as mt; print(mt.data.open.__module__, mt.data.push.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["mltrail.data.reader", "mltrail.data.transfer"]
