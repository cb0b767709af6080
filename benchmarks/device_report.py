"""What every GPU check script (``benchmarks/*_cuda/check_*.py``) shares: the smoke switch, the output
folder, a clean work folder, versions, and a JSON report saved after every part so a crash keeps results.

A device machine has no network and keeps nothing between sessions, so each script writes its whole
record to ``$OUT/NAME`` (``.gpu/out`` here), and ``--smoke`` runs the same steps on the CPU at tiny sizes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any


class DeviceReport:
    """The run's settings and its growing JSON record."""

    def __init__(self, name: str, work: str | Path) -> None:
        import torch

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.smoke = "--smoke" in sys.argv
        self.device = "cpu" if self.smoke else "cuda"
        self.out = Path(os.environ.get("OUT", ".gpu/out"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / name
        self.work = Path(work)
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.started = time.time()
        self.result: dict[str, Any] = {"torch": torch.__version__, "device": self.device, "smoke": self.smoke}
        if self.device == "cuda":
            self.result["gpu"] = torch.cuda.get_device_name(0)

    def save(self) -> None:
        self.result["total_seconds"] = round(time.time() - self.started, 1)
        self.path.write_text(json.dumps(self.result, indent=2, default=str))

    def failed(self, part: str) -> None:
        """Record the current exception under ``errors[part]`` and go on with the next part."""
        self.result.setdefault("errors", {})[part] = traceback.format_exc()[-4000:]
        self.save()
        print(f"FAILED {part}:\n{traceback.format_exc()}", flush=True)

    def peak_memory(self) -> dict[str, float]:
        """Peak GPU memory since the last call (nothing on the CPU)."""
        if self.device != "cuda":
            return {}
        import torch

        peak = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
        return {"max_memory_gib": peak}
