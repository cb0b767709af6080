"""`accelerate launch` with two processes (torch DDP over gloo on the CPU, the code path several GPUs take)
runs `recai gen train` to one complete, loadable output folder written by the main process alone.

Gen is the quickest pillar to launch (about 30 s for two processes on two cores);
benchmarks/multiprocess_training.py runs embed, gen and explain, single and two-process, side by side.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("accelerate")

from typer.testing import CliRunner

from recai.cli import app
from recai.gen.models import load_gen_model
from tests.explain.helpers import base_folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(240)
def test_gen_train_under_accelerate_launch_with_two_processes(tmp_path: Path) -> None:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    data = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        ["gen", "data", "demo", "--out", str(data), "--tasks", "count,item_category", "--per-task", "4",
         "--test-per-task", "1", "--k", "3", "--min-k", "2", "--history-len", "2", "--noun", "film"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    base = base_folder(tmp_path)
    out = tmp_path / "model"
    # --cpu would pick accelerate's simple launcher, which starts one process; --multi_gpu starts two
    # (torchrun) and ACCELERATE_USE_CPU makes them a gloo process group on the CPU.
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "recai.cli",
        "gen", "train", str(data), "--out", str(out), "--base", str(base), "--epochs", "1",
        "--batch-size", "2", "--lora-r", "4", "--max-length", "512", "--save-steps", "1",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    info = json.loads((out / "recai_gen.json").read_text())
    encoded = info["data"]["encoded"]
    expected_steps = -(-encoded // 4)  # each of the two processes takes half the batches of 2
    printed = [int(n) for n in re.findall(r"^(\d+) steps in", done.stdout, flags=re.MULTILINE)]
    assert printed == [expected_steps, expected_steps]  # both processes trained, on half the data each
    assert info["training"]["processes"] == 2 and info["training"]["steps"] == expected_steps
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in tmp_path.iterdir() if "model" in p.name) == ["model"]  # no .work, no tmp
    model, tokenizer = load_gen_model(out)
    assert model(**tokenizer("Recommend a film", return_tensors="pt")).logits.shape[-1] >= len(tokenizer)
