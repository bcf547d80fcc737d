"""The model registry: registered models, numbered versions, aliases, stages and an audit trail.

Use it through ``MltrailClient`` (which includes :class:`RegistryMixin`); model URIs are parsed
by :func:`parse_model_uri`.
"""

from __future__ import annotations

from mltrail.registry.client import RegistryMixin
from mltrail.registry.uri import ModelURI, ResolvedModel, parse_model_uri

__all__ = ["ModelURI", "RegistryMixin", "ResolvedModel", "parse_model_uri"]
