"""Batch prediction of files (``mltrail models predict``): CSV, JSON or Parquet in, CSV or JSON out.

CSV and Parquet inputs are read in chunks (100,000 rows by default), each checked, predicted and
written before the next is read, so memory stays flat however big the file is. A JSON input
holds one of the server's request shapes and is read whole. An output file is written to a
temporary name beside it and renamed at the end: it is either complete or absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mltrail.atomic import temp_name
from mltrail.errors import InvalidInput, NotFound
from mltrail.serving.inputs import Scorer, check_header, csv_numbers, parse_json
from mltrail.serving.outputs import dumps, jsonable, predictions_frame

CHUNK_ROWS = 100_000
INPUT_FORMATS = ("csv", "json", "parquet")
OUTPUT_FORMATS = ("csv", "json")
_SUFFIXES = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
_ROW = re.compile(r"\bin row (\d+)")

#: Called after each chunk with (input bytes read so far, rows predicted so far).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchResult:
    """What ``predict_file`` did."""

    rows: int
    output_format: str


def input_kind(path: Path) -> str:
    """``csv``, ``json`` or ``parquet`` from a file name (``.csv.gz`` and the like are CSV)."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSED and suffixes[-2] == ".csv":
        return "csv"
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"cannot tell the format of {path} from its extension",
            hint="Name it .csv, .json or .parquet, or pass --content-type.",
        )
    return kind


def output_kind(path: Path) -> str:
    """``csv`` or ``json`` from an output file name."""
    kind = {".csv": "csv", ".json": "json"}.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"cannot tell which format to write from the extension of {path}",
            hint="Name it .csv or .json, or pass --format.",
        )
    return kind


def predict_file(
    model: Any,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str] | IO[bytes],
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> BatchResult:
    """Predict with ``model`` on every row of ``input_path``; write the predictions to ``output``
    (a file path, replaced atomically, or a binary stream such as stdout)."""
    source = Path(input_path)
    if not source.exists():
        raise NotFound(f"no input file {source}")
    if not source.is_file():
        raise InvalidInput(f"{source} is not a file")
    kind = input_format or input_kind(source)
    if kind not in INPUT_FORMATS:
        raise InvalidInput(f"unknown input format {kind!r}", hint="Use csv, json or parquet.")
    scorer = Scorer(model)
    if not isinstance(output, str | os.PathLike):
        fmt = output_format or ("json" if kind == "json" else "csv")
        rows = _predict(scorer, source, kind, output, fmt, chunk_rows, progress)
        output.flush()
        return BatchResult(rows, fmt)
    target = Path(output)
    fmt = output_format or output_kind(target)
    if target.is_dir():
        raise InvalidInput(f"{target} is a folder; name the file to write")
    if not target.parent.is_dir():
        raise NotFound(f"cannot write {target}: there is no folder {target.parent}")
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as stream:
            rows = _predict(scorer, source, kind, stream, fmt, chunk_rows, progress)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BatchResult(rows, fmt)


def _predict(
    scorer: Scorer,
    source: Path,
    kind: str,
    stream: IO[bytes],
    fmt: str,
    chunk_rows: int,
    progress: Progress | None,
) -> int:
    writer = _JsonWriter(stream) if fmt == "json" else _CsvWriter(stream)
    rows = 0
    for prepared, done_bytes in _prepared_chunks(scorer, source, kind, chunk_rows):
        writer.write(scorer.predict(prepared))
        rows += len(prepared)
        if progress is not None:
            progress(done_bytes, rows)
    writer.close()
    return rows


def _prepared_chunks(
    scorer: Scorer, source: Path, kind: str, chunk_rows: int
) -> Iterator[tuple[Any, int]]:
    if kind == "json":
        try:
            yield scorer.prepare(parse_json(source.read_bytes())), source.stat().st_size
        except InvalidInput as e:
            raise InvalidInput(f"{source}: {e.message}", hint=e.hint) from None
        return
    offset = 0
    for frame, done_bytes in _frames(source, kind, chunk_rows):
        try:
            if offset == 0:
                check_header(frame, scorer.model)
            if kind == "csv":
                frame = csv_numbers(frame, scorer.model)
            prepared = scorer.prepare_data(frame, str(source))
        except InvalidInput as e:
            raise _at_row(e, source, offset, csv=kind == "csv") from None
        yield prepared, done_bytes
        offset += len(frame)


def _frames(source: Path, kind: str, chunk_rows: int) -> Iterator[tuple[Any, int]]:
    if kind == "parquet":
        yield from _parquet_frames(source, chunk_rows)
        return
    import pandas as pd

    compressed = source.suffix.lower() in _COMPRESSED
    with open(source, "rb") as raw:
        if not compressed and not raw.read(1):
            raise InvalidInput(f"{source} is empty", hint="Start it with a header row.")
        raw.seek(0)
        try:
            with _csv_chunks(source if compressed else raw, source, chunk_rows) as reader:
                for frame in reader:
                    yield frame, 0 if compressed else raw.tell()
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise InvalidInput(f"cannot read {source}: {str(e).strip()}") from None


def _csv_chunks(handle: Any, source: Path, chunk_rows: int) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(handle, chunksize=chunk_rows)
    except pd.errors.EmptyDataError:
        raise InvalidInput(
            f"{source} has no header row", hint="Start it with a header row."
        ) from None


def _parquet_frames(source: Path, chunk_rows: int) -> Iterator[tuple[Any, int]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(
            "reading .parquet files needs pyarrow, which is not installed",
            hint="pip install pyarrow, or convert the file to CSV.",
        ) from None
    try:
        parquet = pq.ParquetFile(source)
        size = source.stat().st_size
        total = max(parquet.metadata.num_rows, 1)
        done = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            done += batch.num_rows
            yield batch.to_pandas(), size * done // total
    except (pa.ArrowException, OSError) as e:
        raise InvalidInput(f"cannot read {source}: {e}") from None


def _at_row(e: InvalidInput, source: Path, offset: int, *, csv: bool) -> InvalidInput:
    # The checker counts rows within a chunk; the user counts them in the file.
    def absolute(m: re.Match[str]) -> str:
        row = int(m.group(1)) + offset
        return f"in row {row}" + (f" (line {row + 2})" if csv else "")

    return InvalidInput(f"{source}: {_ROW.sub(absolute, e.message, count=1)}", hint=e.hint)


class _CsvWriter:
    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.header = True

    def write(self, output: Any) -> None:
        frame = predictions_frame(output)
        text = frame.to_csv(index=False, header=self.header, lineterminator="\n")
        self.stream.write(text.encode("utf-8"))
        self.header = False

    def close(self) -> None:
        pass


class _JsonWriter:
    # {"predictions": [...]} written chunk by chunk: the same document the server answers.
    # Nothing is written before the first chunk is predicted, so a bad input leaves stdout empty.
    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.started = False

    def _start(self) -> None:
        if not self.started:
            self.stream.write(b'{"predictions":[')
            self.started = True
            self.first = True

    def write(self, output: Any) -> None:
        items = jsonable(output)
        if not isinstance(items, list):
            items = [items]
        self._start()
        if not items:
            return
        if not self.first:
            self.stream.write(b",")
        self.stream.write(dumps(items)[1:-1])
        self.first = False

    def close(self) -> None:
        self._start()
        self.stream.write(b"]}\n")


__all__ = ["CHUNK_ROWS", "BatchResult", "input_kind", "output_kind", "predict_file"]
