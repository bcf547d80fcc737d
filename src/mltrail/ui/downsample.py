"""Long metric series cut down to what a chart can show: min/max per bucket, in numpy.

A chart 1,000 pixels wide cannot show a million points, and a browser drawing them stalls. We
split the series (in step order) into equal buckets and keep, per bucket, its lowest and highest
point, plus the first and last points of the series.

Why min/max rather than LTTB (largest triangle three buckets): LTTB keeps one point per bucket,
the one that best preserves the line's visual area, so a one-step spike (a loss blowing up, the
best accuracy reached) can vanish when a neighbour happens to make a larger triangle. Min/max
keeps every bucket's extremes by construction, so the global minimum and maximum, and every spike
wider than a bucket's share of the plot, stay exactly where they were; at two points per bucket
over ~1,000 buckets the drawn line is indistinguishable from the full one at chart width. It is
also fully vectorised (LTTB walks the buckets one after another, depending on the previous
choice), and it is what the SQLite store computes itself for very long series
(:meth:`mltrail.store.base.TrackingStore.metric_arrays`), so both paths draw the same shape.

NaN values take no part in choosing extremes; a bucket holding only NaN keeps one NaN point, so
the chart shows a gap there. ``inf`` and ``-inf`` are ordinary extremes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported where used: the server imports this module (for its constants) on every start,
    # and numpy costs ~90 ms that only a chart's data request needs.
    import numpy as np

#: Points per series unless the caller asks otherwise: about two per pixel of a wide chart.
DEFAULT_POINTS = 2000
#: The fewest points a caller may ask for (first, last, and one bucket's min and max).
MIN_POINTS = 4


def keep_indices(values: np.ndarray, points: int = DEFAULT_POINTS) -> np.ndarray:
    """Indices (ascending) of the at most ``points`` values min/max-per-bucket keeps."""
    import numpy as np

    n = len(values)
    points = max(int(points), MIN_POINTS)
    if n <= points:
        return np.arange(n)
    values = np.asarray(values, dtype=np.float64)
    buckets = (points - 2) // 2
    size = -(-n // buckets)  # ceil: every bucket but the last is full
    buckets = -(-n // size)  # so no bucket is made of padding only
    pad = buckets * size - n
    nan = np.isnan(values)
    # NaN must never win: +inf for the minimum, -inf for the maximum. np.argmin/argmax return
    # the first of equal values, so a padding value (after every real one) can never be chosen.
    low = np.where(nan, np.inf, values)
    high = np.where(nan, -np.inf, values)
    if pad:
        low = np.concatenate([low, np.full(pad, np.inf)])
        high = np.concatenate([high, np.full(pad, -np.inf)])
    base = np.arange(buckets) * size
    mins = base + low.reshape(buckets, size).argmin(axis=1)
    maxs = base + high.reshape(buckets, size).argmax(axis=1)
    keep = np.unique(np.concatenate([[0, n - 1], mins, maxs]))
    return keep[keep < n]


def downsample(
    x: np.ndarray, y: np.ndarray, points: int = DEFAULT_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` cut to at most ``points`` points by min/max per bucket (``x`` in series order)."""
    import numpy as np

    keep = keep_indices(y, points)
    return np.asarray(x)[keep], np.asarray(y)[keep]
