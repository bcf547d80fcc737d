"""Request and reply bodies of the REST API, as pydantic models (they make the OpenAPI document).

Replies are built by :mod:`mltrail.store.wire` and sent as they are; these models describe them
for the OpenAPI document, and the schemathesis tests hold the two together.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: A metric value: a number, or one of the strings JSON needs for NaN and infinities.
MetricValue = float | Literal["NaN", "Infinity", "-Infinity"]
Stage = Literal["active", "deleted"]
View = Literal["active_only", "deleted_only", "all"]

#: Integers the database keeps in BIGINT columns; larger ones are refused with a 400.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Size = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


# -- replies -------------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    error_code: str
    message: str
    hint: str | None = None
    kind: str | None = None


class ExperimentOut(BaseModel):
    experiment_id: str
    name: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str]


class ExperimentsOut(BaseModel):
    experiments: list[ExperimentOut]


class ExperimentIdOut(BaseModel):
    experiment_id: str


class SummaryOut(BaseModel):
    runs: int
    last_run_start: int


class SummariesOut(BaseModel):
    summaries: dict[str, SummaryOut]


class RunInfoOut(BaseModel):
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    user_id: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    parent_run_id: str | None


class RunDataOut(BaseModel):
    params: dict[str, str]
    metrics: dict[str, MetricValue]
    tags: dict[str, str]


class RunOut(BaseModel):
    info: RunInfoOut
    data: RunDataOut


class RunsOut(BaseModel):
    runs: list[RunOut]
    next_page_token: str | None


class RunIdsOut(BaseModel):
    run_ids: list[str]


class MetricOut(BaseModel):
    key: str
    value: MetricValue
    timestamp: int
    step: int


class MetricsOut(BaseModel):
    metrics: list[MetricOut]


class BatchErrorsOut(BaseModel):
    errors: dict[str, ErrorOut]


class FileOut(BaseModel):
    path: str
    hash: str
    size: Size
    mode: Annotated[int, Field(ge=0, le=0o7777)]


class FilesOut(BaseModel):
    files: list[FileOut]


class DeletedOut(BaseModel):
    deleted: int


class DatasetOut(BaseModel):
    path: str
    hash: str
    kind: str
    size: int
    nfiles: int | None
    context: str | None


class RunDatasetOut(DatasetOut):
    direction: str
    timestamp: int


class RunDatasetsOut(BaseModel):
    datasets: list[RunDatasetOut]


class DatasetUseOut(BaseModel):
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int
    lifecycle_stage: str
    direction: str
    dataset: DatasetOut
    timestamp: int


class DatasetUsesOut(BaseModel):
    uses: list[DatasetUseOut]


class DatasetSummaryOut(BaseModel):
    path: str
    versions: int
    runs: int
    readers: int
    writers: int
    first_seen: int
    last_seen: int
    latest: DatasetOut


class DatasetsOut(BaseModel):
    datasets: list[DatasetSummaryOut]


class ReferencedOut(BaseModel):
    artifacts: list[str]
    files: list[str]
    trees: list[str]


# -- requests ------------------------------------------------------------------------------------


class CreateExperiment(Body):
    name: str
    tags: dict[str, str] = {}


class UpdateExperiment(Body):
    name: str | None = None
    lifecycle_stage: Stage | None = None


class SetTag(Body):
    key: str
    value: str


class Summaries(Body):
    experiment_ids: list[str] = Field(max_length=10_000)


class CreateRun(Body):
    experiment_id: str
    run_name: str
    user_id: str | None = None
    start_time: Size
    parent_run_id: str | None = None
    tags: dict[str, str] = {}
    #: Chosen by the client so that a retried create returns the same run.
    run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class UpdateRun(Body):
    status: Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] | None = None
    end_time: Size | None = None
    run_name: str | None = None
    lifecycle_stage: Stage | None = None


class BatchIn(Body):
    run_id: str
    #: ``[key, value, timestamp, step]`` per point.
    metrics: list[tuple[str, MetricValue, Size, Int64]] = []
    params: dict[str, str] = {}
    tags: dict[str, str] = {}


class WriteBatches(Body):
    #: Chosen by the client; a batch sent again with the same id is applied once.
    batch_id: str | None = Field(default=None, min_length=8, max_length=64)
    batches: list[BatchIn]


class SearchRuns(Body):
    experiment_ids: list[str]
    filter: str | None = None
    order_by: list[str] = []
    max_results: int = Field(default=1000, ge=1, le=50_000)
    page_token: str | None = None
    view: View = "active_only"


class AddArtifacts(Body):
    files: list[FileOut]


class DatasetIn(Body):
    path: str
    hash: str
    kind: str
    size: Size
    nfiles: Size | None = None
    context: str | None = None


class LogDatasets(Body):
    direction: Literal["input", "output"]
    datasets: list[DatasetIn]


# -- logged models (MLflow 3's model objects) ----------------------------------------------------


class LoggedModelOut(BaseModel):
    model_id: str
    experiment_id: str
    name: str
    run_id: str | None
    artifact_path: str | None
    model_type: str | None
    status: Literal["PENDING", "READY", "FAILED"]
    lifecycle_stage: str
    creation_time: Int64
    last_update_time: Int64
    params: dict[str, str]
    tags: dict[str, str]


class CreateLoggedModel(Body):
    experiment_id: str
    name: str = Field(min_length=1, max_length=500)
    run_id: str | None = None
    model_type: str | None = Field(default=None, max_length=500)
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    model_id: str | None = None


class LoggedModelStatusIn(Body):
    status: Literal["READY", "FAILED"]


class RunModelIn(Body):
    model_id: str
    step: Int64 = 0


class LogRunModels(Body):
    direction: Literal["input", "output"]
    models: list[RunModelIn]


class NamedDatasetIn(Body):
    name: str = Field(min_length=1, max_length=500)
    digest: str = Field(max_length=36)
    source_type: str = Field(max_length=36)
    source: str
    # "schema" would shadow a BaseModel attribute: the JSON field keeps MLflow's name.
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None
    tags: dict[str, str] = {}


class LogNamedDatasets(Body):
    datasets: list[NamedDatasetIn]


class RunModelOut(BaseModel):
    direction: Literal["input", "output"]
    model_id: str
    step: Int64


class NamedDatasetOut(BaseModel):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(alias="schema")
    profile: str | None
    tags: dict[str, str]


class RunLinksOut(BaseModel):
    datasets: list[NamedDatasetOut]
    models: list[RunModelOut]
