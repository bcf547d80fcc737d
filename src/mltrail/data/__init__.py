"""Data versioning: track files and folders with pointer files, like DVC, in mltrail's object store.

```python
import mltrail.data

mltrail.data.add(["data/customers.csv", "data/images"])  # writes data/customers.csv.trail, …
for ds in mltrail.data.status():
    print(ds.path, ds.state)
mltrail.data.checkout()                                  # workspace = pointers, from the cache
```

See docs/data.md for the pointer format, the stat cache and how files are linked from the cache.
"""

from __future__ import annotations

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
from mltrail.data.workspace import Reporter

__all__ = [
    "Added",
    "CheckedOut",
    "DatasetStatus",
    "Pointer",
    "Reporter",
    "add",
    "checkout",
    "pointer_path",
    "read_pointer",
    "status",
    "unprotect",
    "write_pointer",
]
