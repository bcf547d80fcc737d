"""Tests of pipelines (mltrail.pipeline): spec, DAG, lock, repro, run cache, CLI."""
