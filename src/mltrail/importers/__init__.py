"""Importers: other tools' history, read read-only, written through mltrail's store."""
