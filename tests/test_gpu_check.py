"""scripts/gpu_check.py: its argument checks, the JSON it writes, and the parsers of its parts' output."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

from tinyflow.app.console import summary_table

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)


def test_dry_run_writes_the_plan_within_eight_minutes(tmp_path, capsys):
    output = tmp_path / "out" / "check.json"
    gpu_check.main(["--output", str(output), "--dry-run", "--steps", "7"])
    record = json.loads(output.read_text())
    assert record["dry_run"] is True and record["budget_s"] == 480
    parts = record["parts"]
    assert list(parts) == ["tests", "bench", "train"]
    assert sum(part["timeout_s"] for part in parts.values()) <= 480
    assert parts["tests"]["command"][-4:] == ["-m", "gpu", "-q", "tests"]
    assert parts["bench"]["command"][1:] == [
        "scripts/bench_cmax.py", "--device", "cuda", "--sizes", "10000", "100000", "1000000"
    ]  # fmt: skip
    assert "trainer=gpu" in parts["train"]["command"] and "trainer.max_steps=7" in parts["train"]["command"]
    assert all("returncode" not in part for part in parts.values())  # nothing ran
    if not torch.cuda.is_available():
        assert record["no_cuda"] == "no CUDA device: the GPU parts did not run"
        assert all(part["skipped"] == "no CUDA" for part in parts.values())
    assert json.loads(capsys.readouterr().out)["output"] == str(output)
    assert [p.name for p in output.parent.iterdir()] == ["check.json"]  # no temporary file left


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-CUDA record")
def test_without_cuda_every_part_is_skipped_with_a_clear_record(tmp_path):
    output = tmp_path / "check.json"
    gpu_check.main(["--output", str(output)])
    record = json.loads(output.read_text())
    assert record["cuda"] is False and record["device"] is None and record["dry_run"] is False
    assert {part["skipped"] for part in record["parts"].values()} == {"no CUDA"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bench-timeout", "400"], "expected at most 480 s together"),
        (["--tests-timeout", "0"], "--tests-timeout 0: expected at least 1 second"),
        (["--steps", "0"], "expected positive counts"),
    ],
)
def test_bad_arguments_are_refused_with_the_option_named(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        gpu_check.parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_parsers_read_the_real_outputs_of_the_parts(tmp_path):
    tiny = ["--sizes", "50", "--passes", "2", "--batch", "1", "--resolution", "16", "--repeats", "1"]
    methods = [
        "--methods",
        "event_flow",
        "torch_linear",
        "--memory-sizes",
        "50",
        "--memory-methods",
        "torch_linear",
    ]
    bench = subprocess.run(
        [sys.executable, "scripts/bench_cmax.py", *tiny, *methods],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    records = gpu_check.parse_bench(bench.stdout)
    assert [(r.get("table"), r["method"]) for r in records] == [
        (None, "event_flow"), (None, "torch_linear"), ("memory", "torch_linear")
    ]  # fmt: skip
    assert records[0]["time_vs_event_flow"] == 1.0 and records[2]["peak_mib"] > 0
    console = Console(file=(tmp_path / "summary.txt").open("w"), width=80)
    console.print(summary_table({"run dir": tmp_path, "steps": 200, "wall time": "40.0 s"}, "run x"))
    console.file.close()
    assert gpu_check.parse_train((tmp_path / "summary.txt").read_text()) == {
        "steps": 200, "wall_s": 40.0, "steps_per_s": 5.0
    }  # fmt: skip
    assert gpu_check.parse_pytest("...\n2 passed, 310 deselected in 12.3s\n") == {
        "passed": 2,
        "deselected": 310,
    }
    assert gpu_check.parse_pytest("no tests ran") == {}
