"""Does `recai embed | gen | explain train` work under `accelerate launch` with two processes?

Protocol: for each pillar, a tiny setup in a temporary folder (the `demo` dataset; a tiny randomly
initialised model built from a config, as the unit tests build them), then the CLI training command
twice with the same arguments (one epoch, so the step count shows how the data was split):

- ``single``: ``python -m recai.cli PILLAR train ...``, one plain process;
- ``two_processes``: ``accelerate launch --multi_gpu --num_processes 2 --num_machines 1
  --mixed_precision no --dynamo_backend no -m recai.cli PILLAR train ...`` with ``ACCELERATE_USE_CPU=true``:
  two processes, torch DDP over gloo on the CPU, the code path several GPUs take (with NCCL there).

``accelerate launch --cpu --num_processes 2`` is *not* that: in accelerate 1.16 ``--cpu`` picks the
simple launcher, which starts one process unless an MPI hostfile is given. The ``cpu_flag`` record shows
it for the quickest pillar (one process prints, the steps equal the single run's).

Per run: exit status, wall time, the steps and training loss the model's summary records, how many
processes ran training (each prints its own "N steps" line), whether the output folder holds every file
it should and loads the way the docs load it, whether no temporary or work folder was left next to it,
and which processes wrote into it: a ``sitecustomize`` on the children's ``PYTHONPATH`` logs the pid
and rank of every :func:`recai.data.atomic.atomic_directory` and ``atomic_file`` call. Writes
``results/multiprocess_training.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tiny model builders live in tests/

from recai.data.atomic import write_text_atomic  # noqa: E402

HERE = Path(__file__).resolve().parent
PILLARS = ("embed", "gen", "explain")

#: Logs every atomic write (pid, rank, target) to $RECAI_WRITE_LOG; imported by every child process.
SITECUSTOMIZE = """
import contextlib, os

log = os.environ.get("RECAI_WRITE_LOG")
if log:
    import recai.data.atomic as atomic

    def _logged(original):
        @contextlib.contextmanager
        def wrapper(target, *args, **kwargs):
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\\t{os.environ.get('RANK', '-')}\\t{target}\\n")
            with original(target, *args, **kwargs) as tmp:
                yield tmp
        return wrapper

    atomic.atomic_directory = _logged(atomic.atomic_directory)
    atomic.atomic_file = _logged(atomic.atomic_file)
"""

EXPECTED = {
    "embed": ["model.safetensors", "config.json", "modules.json", "tokenizer.json", "recai_training.json",
              "README.md"],
    "gen": ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "recai_gen.json"],
    "explain": ["adapter_config.json", "adapter_model.safetensors", "projectors.safetensors",
                "tokenizer.json", "target", "catalog", "recai_explain.json"],
}  # fmt: skip
SUMMARY = {"embed": "recai_training.json", "gen": "recai_gen.json", "explain": "recai_explain.json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str], cwd: Path) -> None:
    """Run a setup command (data building); raise with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "recai.cli", *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"recai {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def setup_embed(root: Path, env: dict[str, str], args: argparse.Namespace) -> list[str]:
    """Embedding data on demo and a 2-layer, 32-wide random BERT; returns the `embed train` arguments."""
    from tests.embed.tiny_st import tiny_sentence_transformer

    data = ["embed", "data", "demo", "--out", str(root / "data"), "--per-task", str(args.per_task)]
    cli(*data, env=env, cwd=root)
    base = tiny_sentence_transformer(root / "models")
    return ["embed", "train", str(root / "data"), "--base", str(base), "--batch-size", "4", "--epochs", "1",
            "--save-steps", "4"]  # fmt: skip


def _tiny_llm(root: Path) -> Path:
    from tests.explain.helpers import base_folder

    return base_folder(root)  # a 2-layer, 32-wide random Llama with a byte-level BPE tokenizer


def setup_gen(root: Path, env: dict[str, str], args: argparse.Namespace) -> list[str]:
    """Gen data on demo (three tasks) and a tiny random Llama; returns the `gen train` arguments."""
    cli("gen", "data", "demo", "--out", str(root / "data"), "--tasks", "count,category_cold,item_category",
        "--per-task", str(args.per_task), "--test-per-task", "1", "--k", "3", "--min-k", "2",
        "--history-len", "2", "--noun", "film", env=env, cwd=root)  # fmt: skip
    base = _tiny_llm(root)
    return ["gen", "train", str(root / "data"), "--base", str(base), "--batch-size", "2", "--epochs", "1",
            "--lora-r", "4", "--max-length", "512", "--save-steps", "4"]  # fmt: skip


def setup_explain(root: Path, env: dict[str, str], args: argparse.Namespace) -> list[str]:
    """Explain data on demo with a tiny SASRec target and a tiny random Llama; the `explain train` args."""
    cli("explain", "data", "demo", "--out", str(root / "data"), "--per-task", str(args.per_task // 2),
        "--test-per-task", "1", "--k", "3", "--n-candidates", "3", "--history-len", "3", "--noun", "film",
        "--target-param", "hidden=16", "--target-param", "layers=1", "--target-param", "heads=1",
        "--target-param", "max_len=10", "--target-param", "epochs=2",
        "--task-size", f"classification={args.per_task}", "--test-task-size", "classification=1",
        env=env, cwd=root)  # fmt: skip
    base = _tiny_llm(root)
    return ["explain", "train", str(root / "data"), "--mode", "hybrid", "--base", str(base), "--batch-size",
            "2", "--epochs", "1", "--lora-r", "4", "--max-length", "768", "--save-steps", "4"]  # fmt: skip


SETUPS: dict[str, Callable[[Path, dict[str, str], argparse.Namespace], list[str]]] = {
    "embed": setup_embed,
    "gen": setup_gen,
    "explain": setup_explain,
}


def launch_prefix(kind: str, port: int) -> list[str]:
    common = ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "--main_process_port", str(port)]  # fmt: skip
    if kind == "single":
        return [sys.executable, "-m", "recai.cli"]
    flag = "--multi_gpu" if kind == "two_processes" else "--cpu"
    return [sys.executable, "-m", "accelerate.commands.launch", flag, *common, "-m", "recai.cli"]


def load_check(pillar: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """Load the result the way the docs do, in a fresh process, and use it once."""
    code = {
        "embed": f"from recai.embed import load_encoder\n"
        f"v = load_encoder('st:{out}').encode(['a crime film', 'a comedy'], kind='query')\n"
        f"assert v.shape[0] == 2 and abs(float((v[0] ** 2).sum()) - 1) < 1e-4, v.shape\n",
        "gen": f"from recai.gen.models import load_gen_model\n"
        f"model, tok = load_gen_model({str(out)!r})\n"
        f"ids = tok('Recommend a film', return_tensors='pt')\n"
        f"assert model(**ids).logits.shape[-1] >= len(tok)\n",
        "explain": f"from recai.explain.model import Explainer\n"
        f"e = Explainer.load({str(out)!r})\n"
        f"assert e.mode == 'hybrid'\n",
    }[pillar]
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return {"ok": done.returncode == 0, "error": None if done.returncode == 0 else done.stderr[-1500:]}


def run_once(
    pillar: str, kind: str, train_args: list[str], root: Path, env: dict[str, str]
) -> dict[str, Any]:
    """One training command; what it did and what it left."""
    out = root / f"out-{kind}"
    write_log = root / f"writes-{kind}.tsv"
    env = {**env, "RECAI_WRITE_LOG": str(write_log)}
    if kind != "single":
        env["ACCELERATE_USE_CPU"] = "true"
    command = [*launch_prefix(kind, free_port()), *train_args, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    (root / f"log-{kind}.txt").write_text(done.stdout + "\n----- stderr -----\n" + done.stderr)
    step_lines = re.findall(r"^.*?\b(\d+) steps\b.*$", done.stdout, flags=re.MULTILINE)
    record: dict[str, Any] = {
        "command": " ".join(c if c != sys.executable else "python" for c in command),
        "exit_status": done.returncode,
        "wall_s": round(wall, 1),
        "processes_that_trained": len(step_lines),
        "steps_printed": [int(s) for s in step_lines],
    }
    if done.returncode != 0:
        record["error_tail"] = (done.stdout[-2000:] + "\n" + done.stderr[-4000:]).strip()
    present = [name for name in EXPECTED[pillar] if (out / name).exists()]
    record["output_complete"] = len(present) == len(EXPECTED[pillar])
    record["missing_files"] = sorted(set(EXPECTED[pillar]) - set(present))
    record["left_behind"] = sorted(
        p.name for p in root.iterdir() if p.name.startswith(f".{out.name}.") or p.name == f"{out.name}.work"
    )
    writes = [line.split("\t") for line in write_log.read_text().splitlines()] if write_log.exists() else []
    into_out = [w for w in writes if Path(w[2]).resolve().is_relative_to(out.resolve())]
    record["writes_into_output"] = len(into_out)
    record["writer_pids"] = len({w[0] for w in into_out})
    record["writer_ranks"] = sorted({w[1] for w in into_out})
    record["only_one_process_wrote"] = len({w[0] for w in into_out}) == 1
    summary_path = out / SUMMARY[pillar]
    if summary_path.exists():
        training = json.loads(summary_path.read_text())["training"]
        curve = training.get("loss_curve") or []
        record.update(
            steps=training["steps"],
            processes=training.get("processes"),
            train_loss=round(float(training["train_loss"]), 4),
            last_logged_loss=curve[-1]["loss"] if curve else None,
            train_s=training["seconds_this_run"],
        )
        record["loadable"] = load_check(pillar, out, env)
    return record


def run_pillar(pillar: str, args: argparse.Namespace, base_env: dict[str, str]) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"recai-mp-{pillar}-"))
    env = {**base_env, "RECAI_HOME": str(root / "home")}
    try:
        train_args = SETUPS[pillar](root, env, args)
        result: dict[str, Any] = {"train_arguments": train_args[2:]}
        kinds = ["single", "two_processes"] + (["cpu_flag"] if pillar == args.cpu_flag_pillar else [])
        for kind in kinds:
            result[kind] = run_once(pillar, kind, train_args, root, env)
            print(pillar, kind, json.dumps({k: v for k, v in result[kind].items() if k != "error_tail"}))
        one, two = result["single"].get("steps"), result["two_processes"].get("steps")
        if one and two:
            result["data_split"] = {
                "single_steps": one,
                "two_process_steps": two,
                "each_process_saw_half": two in (one // 2, -(-one // 2)),
            }
        if args.keep:
            result["folder"] = str(root)
        return result
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pillars", default=",".join(PILLARS))
    parser.add_argument("--per-task", type=int, default=8, help="training examples per task")
    parser.add_argument("--cpu-flag-pillar", default="embed", help="also run the --cpu launcher on this one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, outputs)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "multiprocess_training.json")
    args = parser.parse_args()

    hook = Path(tempfile.mkdtemp(prefix="recai-mp-hook-"))
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    base_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    import accelerate
    import torch
    import transformers

    results: dict[str, Any] = {
        "benchmark": "multiprocess_training",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "versions": {"torch": torch.__version__, "accelerate": accelerate.__version__,
                     "transformers": transformers.__version__},
        "backend": "torch DDP over gloo, 2 processes on one CPU machine (ACCELERATE_USE_CPU=true); "
        "OMP_NUM_THREADS=1 in every run",
        "pillars": {},
    }  # fmt: skip
    try:
        for pillar in args.pillars.split(","):
            results["pillars"][pillar] = run_pillar(pillar, args, base_env)
    finally:
        shutil.rmtree(hook, ignore_errors=True)
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
