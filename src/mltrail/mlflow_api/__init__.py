"""MLflow's REST API on mltrail: the real ``mlflow`` client's calls, served by mltrail's store.

An API-layer package: it translates MLflow's requests into calls on the same store, registry and
object store as mltrail's own API and answers in MLflow's JSON shapes. Two faces use it: the
MLflow routes of ``mltrail server`` (``/api/2.0/mlflow/...``, ``/api/2.0/mlflow-artifacts/...``)
and the ``mltrail:`` plugin, which the mlflow client loads to write straight into a project's
embedded store.
"""
