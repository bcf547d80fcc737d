"""The team server: ``mltrail server``, a REST API over a shared store and object store."""
