"""Each tracker's own reader, to check what it wrote, and SeeTrain's side in the same shape."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys


def read_wandb(wandb_run) -> list[dict]:
    """The records of a finished offline W&B run, read by W&B's own reader of its
    transaction log (``wandb leet inspect --json``; wandb 0.31 has no Python reader)."""
    path = wandb_run.settings.sync_file
    wandb_cli = os.path.join(os.path.dirname(sys.executable), "wandb")
    out = subprocess.run([wandb_cli, "leet", "inspect", "--json", path], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wandb_history(records: list[dict]) -> dict[int, dict]:
    """W&B's history rows by step, without its own ``_`` fields."""
    rows = {}
    for rec in records:
        if rec.get("type") == "history":
            item = rec["history"]["item"]
            rows[int(rec["history"]["step"]["num"])] = {k: v for k, v in item.items() if not k.startswith("_")}
    return rows


def scalar_history(api_run) -> dict[int, dict]:
    """SeeTrain's scalars by step."""
    return {row["step"]: {k: v for k, v in row.items() if k != "step"} for row in api_run.history()}


def read_tfevents(logdir: str):
    """TensorBoard's own reader over one log directory (sizes 0: keep every event)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0, "audio": 0, "histograms": 0,
                                                   "tensors": 0})
    acc.Reload()
    return acc


def event_dirs(root: str) -> list[str]:
    return sorted({os.path.dirname(p) for p in glob.glob(os.path.join(root, "**", "events.out.tfevents.*"),
                                                          recursive=True)})
