"""The seetrain command line."""

import csv
import io
import json
import math
import subprocess
import sys

import pytest

import seetrain
from seetrain import cli


@pytest.fixture
def store(_isolated_store):
    run = seetrain.init(project="cli", experiment_name="demo-run", config={"lr": 0.01, "opt": {"name": "sgd"}})
    for s in range(3):
        run.log({"loss": 1.0 / (s + 1), "acc": s / 10})
    run.log({"loss": float("nan")}, step=3)
    run.log({"sample": "some text"}, step=3)
    run.finish()
    return run


def test_ls_and_show(store, capsys):
    assert cli.main(["ls"]) == 0
    out = capsys.readouterr().out
    assert store.id in out and "demo-run" in out and "finished" in out
    assert cli.main(["show", store.id[:10]]) == 0
    out = capsys.readouterr().out
    assert "lr = 0.01" in out and "opt.name = sgd" in out and "loss = nan" in out and "sample (text, 1 items)" in out


def test_export_csv_and_jsonl(store, capsys, tmp_path):
    assert cli.main(["export", store.id, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert float(rows[1]["loss"]) == 0.5 and rows[3]["acc"] == ""
    out = tmp_path / "run.jsonl"
    assert cli.main(["export", store.id, "-f", "jsonl", "-o", str(out), "--keys", "loss"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"step": 0, "loss": 1.0} and math.isnan(lines[3]["loss"])


def test_errors_are_one_line_without_traceback(_isolated_store, tmp_path):
    seetrain.init(project="p").finish()
    proc = subprocess.run([sys.executable, "-m", "seetrain", "show", "does-not-exist"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "no run 'does-not-exist'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "seetrain", "ls", "--dir", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "no SeeTrain store" in proc.stderr and "Traceback" not in proc.stderr


def test_version_and_help():
    import os
    exe = os.path.join(os.path.dirname(sys.executable), "seetrain")  # the console script
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"seetrain {seetrain.__version__}"
    proc = subprocess.run([sys.executable, "-m", "seetrain", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "adapters" in proc.stdout


def test_adapters_lists_installed(capsys):
    assert cli.main(["adapters"]) == 0
    out = capsys.readouterr().out
    assert "ADAPTER" in out or "no SeeTrain adapters installed" in out


def test_demo_trains_logs_and_shows(tmp_path):
    store = tmp_path / "demo-store"
    proc = subprocess.run([sys.executable, "-m", "seetrain.demo", "--dir", str(store), "--epochs", "3", "--no-ui"],
                          capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                            "SEETRAIN_SILENT": ""})
    assert proc.returncode == 0, proc.stderr
    assert "stored in" in proc.stderr and "status     finished" in proc.stdout and "val/accuracy" in proc.stdout
    [run] = seetrain.Api(store).runs("demo")
    assert run.media("val/decision_surface") and len(run.scalars("train/loss")) == 3 * 13
