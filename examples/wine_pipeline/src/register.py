"""Stage register: register models/rf as a version of wine-rf and point the production alias at it.

The version is tied to the train stage's run (the run that wrote this exact models/rf), so
`mltrail lineage models:/wine-rf@production` walks back through train and prepare to data/raw.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import mltrail as mt
import mltrail.data
from mltrail.errors import NotFound

MODEL = "models/rf"
OUT = Path("models/registered.json")


def main() -> None:
    """Find the train run that wrote models/rf, register the folder, move the alias if good."""
    params = yaml.safe_load(Path("params.yaml").read_text())["register"]
    name, alias = params["name"], params["alias"]
    accuracy = json.loads(Path("metrics.json").read_text())["accuracy"]
    # The pointer file (written by repro for every cached out) names this version of the folder.
    tree_hash = mltrail.data.read_pointer(Path(MODEL + ".trail")).hash
    client = mt.MltrailClient()
    writers = [
        use
        for use in client.store.find_dataset_uses(path=MODEL, hash=tree_hash)
        if use.direction == "output" and use.status == "FINISHED"
    ]
    if not writers:
        raise SystemExit(f"register: no finished run wrote {MODEL}@{tree_hash[:12]}; run train")
    run_id = writers[0].run_id  # newest first
    # The same bytes registered before (say, a grid went back to these params): reuse that version.
    try:
        existing = [v for v in client.list_model_versions(name) if v.tree_hash == tree_hash]
    except NotFound:  # the first version creates the model
        existing = []
    if existing:
        version = existing[0]
    else:
        version = client.create_model_version(
            name,
            MODEL,
            run_id=run_id,
            tree_hash=tree_hash,
            description=f"accuracy {accuracy} on the held-out split",
        )
    promoted = accuracy >= params["min_accuracy"]
    if promoted:
        client.set_registered_model_alias(
            name, alias, version.version, comment=f"accuracy {accuracy} >= {params['min_accuracy']}"
        )
    record = {
        "name": name,
        "version": version.version,
        "alias": alias if promoted else None,
        "run_id": version.run_id,
        "tree_hash": tree_hash,
        "accuracy": accuracy,
    }
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    moved = f", alias {alias} -> v{version.version}" if promoted else f" (below {alias}'s bar)"
    print(f"register: {name} v{version.version} from run {(version.run_id or run_id)[:8]}{moved}")


if __name__ == "__main__":
    main()
