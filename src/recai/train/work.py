"""The work folder of a resumable training run: where checkpoints go, the marker that says whose they are,
and the fingerprint of the data that marker records.

Every trainer in recai (embedder, generator, RL, explainer, planner distillation) writes its checkpoints
to ``OUTPUT.work/`` beside the model folder it will write. A rerun with the same config and data resumes
from the latest checkpoint there; a rerun with a different one is refused instead of mixing them. The
finished model is written (by the main process only, under ``accelerate launch``) before the work folder
is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recai.data.atomic import write_text_atomic

WORK_SUFFIX = ".work"
MARKER_FILE = "run.json"


def data_fingerprint(lines: Iterable[str]) -> str:
    """A short hash of the training data, one line of text per example (the caller picks the text)."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()[:16]


def examples_fingerprint(examples: Iterable[Any]) -> str:
    """:func:`data_fingerprint` of examples that serialise with ``to_dict()`` (their sorted-key JSON)."""
    return data_fingerprint(json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False) for e in examples)


def refuse_existing(output: str | Path, overwrite: bool) -> Path:
    """``output`` as a path; a clear error when it exists and may not be replaced."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} already exists (pass overwrite=True to replace it)")
    return output


def prepare_work_folder(work: Path, identity: dict[str, Any]) -> str | None:
    """Create the work folder, or check that it belongs to this run; return the checkpoint to resume."""
    marker = work / MARKER_FILE
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


@dataclass
class TrainingResult:
    """Where a trained model went and what the run did; each trainer's result adds what it counts.

    Attributes:
        model_dir: The model folder written.
        steps: Optimiser steps in total (resumed ones included).
        seconds: Seconds this run trained.
        resumed_from: The checkpoint this run resumed from, or None.
        summary: The summary written into the folder (its ``training`` part is :meth:`WorkFolder.run`'s
            record plus the trainer's own).
    """

    model_dir: Path
    steps: int
    seconds: float
    resumed_from: str | None
    summary: dict[str, Any]


@dataclass
class WorkFolder:
    """One training run's ``OUTPUT.work/`` folder, opened once per process.

    Attributes:
        output: The model folder the run will write.
        path: ``OUTPUT.work/``, the trainer's ``output_dir`` (checkpoints and the run marker).
        resume_from: The checkpoint to resume from, or None for a fresh start.
        state: The ``accelerate`` ``PartialState`` (one per process under ``accelerate launch``).
    """

    output: Path
    path: Path
    resume_from: str | None
    state: Any

    @classmethod
    def open(cls, output: Path, identity: dict[str, Any]) -> WorkFolder:
        """Prepare ``OUTPUT.work/`` for the run that ``identity`` (its ``config`` and data) describes;
        the main process goes first so the others find the marker it wrote.

        Training runs offline (base models are local folders), so ``HF_HUB_OFFLINE`` is set before the
        Hugging Face libraries load."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from accelerate import PartialState

        work = output.with_name(output.name + WORK_SUFFIX)
        state = PartialState()
        with state.main_process_first():
            resume_from = prepare_work_folder(work, identity)
        return cls(output, work, resume_from, state)

    @property
    def resumed_from(self) -> str | None:
        """The name of the checkpoint this run resumed from (for the training record)."""
        return Path(self.resume_from).name if self.resume_from else None

    def run(self, trainer: Any) -> tuple[dict[str, Any], float]:
        """Train (from the checkpoint to resume, if any); the record every trainer keeps of the run (steps,
        time, where it resumed, loss, its loss curve, processes) and the seconds it took."""
        started = time.perf_counter()
        outcome = trainer.train(resume_from_checkpoint=self.resume_from)
        seconds = time.perf_counter() - started
        record = {
            "steps": int(trainer.state.global_step),
            "seconds_this_run": round(seconds, 2),
            "resumed_from": self.resumed_from,
            "train_loss": float(outcome.training_loss),
            "loss_curve": logged_curve(trainer.state.log_history),
            "processes": self.state.num_processes,
        }
        return record, seconds

    def finish(self, trainer: Any, save: Callable[[], Any]) -> None:
        """Write the model with ``save`` on the main process and drop the work folder; every process
        waits until it is written, so none reads the output before it exists."""
        if trainer.is_world_process_zero():
            save()
            shutil.rmtree(self.path, ignore_errors=True)
        self.state.wait_for_everyone()


def logged_curve(history: Iterable[dict[str, Any]], key: str = "loss") -> list[dict[str, Any]]:
    """The logged values of ``key`` by step, from a trainer's ``state.log_history``."""
    return [{"step": h["step"], key: round(float(h[key]), 4)} for h in history if key in h]
