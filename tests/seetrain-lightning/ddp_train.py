"""A 2-process CPU DDP training (gloo) with SeeTrainLogger, run by the tests as a script.

Lightning's subprocess launcher starts rank 1 by running this same file again (with
LOCAL_RANK=1 in its environment), so it must be a standalone script. Rank 0 writes what
Lightning reported to the JSON file given as the second argument.

    python ddp_train.py ROOT_DIR OUT_JSON
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lightning.pytorch import Trainer  # noqa: E402
from lightning_tiny import TinyRegressor, make_loader  # noqa: E402

from seetrain_lightning import SeeTrainLogger  # noqa: E402


def main(root: str, out: str) -> None:
    trainer = Trainer(default_root_dir=root, strategy="ddp", accelerator="cpu", devices=2, max_epochs=2,
                      limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0, log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      logger=SeeTrainLogger(project="ddp", experiment_name="two-ranks"))
    trainer.fit(TinyRegressor(), make_loader(32, batch_size=4), make_loader(8, batch_size=4, seed=1))
    if trainer.is_global_zero:
        with open(out, "w") as fh:
            json.dump({"global_step": trainer.global_step,
                       "val_loss": float(trainer.callback_metrics["val_loss"])}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
