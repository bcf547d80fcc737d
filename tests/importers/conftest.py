"""Fixtures of the import tests: a local S3-compatible server for sources that keep data in S3."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.s3server")
from tests.s3server import aws_env, bucket, s3_client, s3_endpoint  # noqa: E402, F401
