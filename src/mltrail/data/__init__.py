"""Data versioning: track files and folders with pointer files, like DVC, in mltrail's object store.

```python
import mltrail.data

mltrail.data.add(["data/customers.csv", "data/images"])  # writes data/customers.csv.trail, …
for ds in mltrail.data.status():
    print(ds.path, ds.state)
mltrail.data.checkout()                                  # workspace = pointers, from the cache
mltrail.data.push()                                      # to the default remote
with mltrail.data.open("data/customers.csv", rev="v1.0", mode="r") as f:  # no checkout
    header = f.readline()
```

See docs/data.md for the pointer format, the stat cache and how files are linked from the cache.
"""

from __future__ import annotations

from mltrail.data.diff import DatasetDiff, diff
from mltrail.data.ops import (
    Added,
    CheckedOut,
    DatasetStatus,
    add,
    checkout,
    status,
    unprotect,
)
from mltrail.data.pointer import Pointer, pointer_path, read_pointer, write_pointer
from mltrail.data.reader import open
from mltrail.data.transfer import MissingObject, Pulled, Transfer, fetch, pull, push
from mltrail.data.workspace import Reporter

__all__ = [
    "Added",
    "CheckedOut",
    "DatasetDiff",
    "DatasetStatus",
    "MissingObject",
    "Pointer",
    "Pulled",
    "Reporter",
    "Transfer",
    "add",
    "checkout",
    "diff",
    "fetch",
    "open",
    "pointer_path",
    "pull",
    "push",
    "read_pointer",
    "status",
    "unprotect",
    "write_pointer",
]
