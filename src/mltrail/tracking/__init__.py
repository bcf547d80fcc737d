"""The tracking API: the explicit client and the fluent functions built on it."""
