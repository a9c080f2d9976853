"""Test data for the dashboard tests, written by the real core (scalars, images, audio, text)."""

from __future__ import annotations

import math

import numpy as np

import seetrain

STEPS = 50

#: Debian's Chromium, which the browser tests drive through Playwright
CHROMIUM = "/usr/bin/chromium"
# Playwright adds --headless and a fresh --user-data-dir itself; the rest keep Chromium off
# the network (this closed network refuses its background connections).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def loss_at(step: int, scale: float = 1.0) -> float:
    return scale * 2.0 / (1 + step) + 0.01


def write_store(directory: str) -> dict[str, str]:
    """Two finished runs of project "vision" with scalars and media, and one of project "nlp"."""
    ids = {}
    for name, lr, scale in (("resnet-a", 0.1, 1.0), ("resnet-b", 0.01, 1.5)):
        run = seetrain.init(project="vision", experiment_name=name, dir=directory,
                            config={"lr": lr, "optimizer": {"name": "sgd", "momentum": 0.9}, "batch_size": 32},
                            description=f"ResNet run {name}", tags=["baseline", name[-1]])
        for step in range(STEPS):
            run.log({"train/loss": loss_at(step, scale), "train/acc": 1 - loss_at(step, scale) / 3,
                     "lr": lr * (0.95 ** step)}, step=step)
            if step % 10 == 9:
                run.log({"val/loss": loss_at(step, scale) * 1.1, "val/acc": 0.5 + step / 200}, step=step)
            if step % 20 == 0:
                img = np.zeros((16, 16, 3), dtype=np.uint8)
                img[:, :, step // 20] = 255  # red, green, blue by step
                run.log({"samples/image": seetrain.Image(img, caption=f"step {step}"),
                         "samples/audio": seetrain.Audio(np.sin(np.linspace(0, 440 * 2 * math.pi, 800)) * 0.5,
                                                         sample_rate=8000, caption="tone"),
                         "samples/text": f"prediction at step {step}"}, step=step)
        run.finish()
        ids[name] = run.id
    run = seetrain.init(project="nlp", experiment_name="bert", dir=directory, config={"lr": 3e-5})
    run.log({"loss": float("nan")}, step=0)
    run.log({"loss": 0.5}, step=1)
    run.log({"loss": float("inf")}, step=2)
    run.finish()
    ids["bert"] = run.id
    return ids
