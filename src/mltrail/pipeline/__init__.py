"""Pipelines: ``mltrail.yaml`` stages, ``mltrail.lock``, ``mltrail repro`` and the run cache.

Importing this package is cheap (no YAML, no SQLAlchemy); ``spec.load`` parses the pipeline file.
See docs/pipelines.md.
"""

from __future__ import annotations
