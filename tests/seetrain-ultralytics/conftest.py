"""Ultralytics offline: its own integrations off, a local font, a tiny detection dataset.

The root conftest already sets YOLO_OFFLINE, YOLO_AUTOINSTALL=0 and a temporary
YOLO_CONFIG_DIR; the dataset checks would still fetch ``Arial.ttf`` unless a font of that
name is in the config dir, so matplotlib's DejaVuSans is copied there.
"""

from __future__ import annotations

import os
import shutil

import pytest

IMAGE_SIZE = 64


@pytest.fixture(scope="session")
def yolo_offline():
    import matplotlib

    config_dir = os.environ["YOLO_CONFIG_DIR"]
    font = os.path.join(config_dir, "Arial.ttf")
    if not os.path.exists(font):
        shutil.copy(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), font)
    from ultralytics import settings

    settings.update({name: False for name in ("mlflow", "wandb", "tensorboard", "clearml", "comet", "dvc",
                                              "raytune", "sync", "hub", "neptune")
                     if name in settings})


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, yolo_offline) -> str:
    """8 training and 4 validation images of red boxes on grey, with YOLO labels; the path
    of its ``data.yaml``."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("yolo-data")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 40, np.uint8)
            lines = []
            for _ in range(2):
                w, h = (int(v) for v in rng.integers(12, 28, 2))
                x, y = int(rng.integers(0, IMAGE_SIZE - w)), int(rng.integers(0, IMAGE_SIZE - h))
                image[y:y + h, x:x + w] = (230, 60, 60)
                cx, cy = (x + w / 2) / IMAGE_SIZE, (y + h / 2) / IMAGE_SIZE
                lines.append(f"0 {cx:.5f} {cy:.5f} {w / IMAGE_SIZE:.5f} {h / IMAGE_SIZE:.5f}")
            Image.fromarray(image).save(root / "images" / split / f"{i}.png")
            (root / "labels" / split / f"{i}.txt").write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")
    return str(data)
