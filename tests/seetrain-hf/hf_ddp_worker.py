"""One rank of a real 2-process CPU (gloo) Accelerate training, started by
test_hf_accelerate.py::test_only_the_main_process_tracks (not a test module itself).

Every rank builds a SeeTrainTracker and trains; each writes what it saw to
``$HF_WORKER_OUT/rank<N>.json`` so the test can compare it with the store.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from accelerate import Accelerator

from seetrain_hf import SeeTrainTracker


def main() -> int:
    tracker = SeeTrainTracker(project="ddp-project", experiment_name="ddp")
    accelerator = Accelerator(cpu=True, log_with=[tracker])
    accelerator.init_trackers("ddp-project", config={"world_size": accelerator.num_processes})
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    losses = []
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x), y)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        accelerator.log({"train/loss": loss.item(), "rank": accelerator.process_index}, step=step)
    # a direct call on every rank: the tracker itself is main-process-only too
    tracker.log({"direct": float(accelerator.process_index)}, step=0)
    started = tracker.tracker is not None
    accelerator.end_training()
    out = os.path.join(os.environ["HF_WORKER_OUT"], f"rank{accelerator.process_index}.json")
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"losses": losses, "started": started, "num_processes": accelerator.num_processes}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
