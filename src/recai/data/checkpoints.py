"""The work folder of a resumable training run: its identity marker and the checkpoint to resume from.

Shared by every trainer in recai (embedder, generator, explainer), so that all of them refuse to mix
checkpoints of a different config or data in the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recai.data.atomic import write_text_atomic


def prepare_work_folder(work: Path, identity: dict[str, Any]) -> str | None:
    """Create the work folder, or check that it belongs to this run; return the checkpoint to resume."""
    marker = work / "run.json"
    if work.exists() and marker.exists():
        stored = json.loads(marker.read_text())
        if stored != json.loads(json.dumps(identity)):
            changed = sorted(
                k
                for k in set(stored["config"]) | set(identity["config"])
                if stored["config"].get(k) != identity["config"].get(k)
            )
            what = f"config fields {changed}" if changed else "training data"
            raise ValueError(
                f"{work} holds checkpoints of a different run ({what} changed); delete it to start over"
            )
        checkpoints = sorted(work.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        return str(checkpoints[-1]) if checkpoints else None
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps(identity, indent=2) + "\n")
    return None
