"""A tiny LightningModule and synthetic data shared by the Lightning adapter tests and the
DDP script (which runs it in fresh processes, so this module imports only what it needs)."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule
from torch.utils.data import DataLoader, TensorDataset


def make_loader(n: int = 32, batch_size: int = 8, seed: int = 0) -> DataLoader:
    """``n`` samples of y = 2x + 1 plus noise, in batches of ``batch_size``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x.sum(dim=1, keepdim=True) * 2 + 1 + 0.01 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class TinyRegressor(LightningModule):
    """One Linear layer; logs ``train_loss`` on step and epoch and ``val_loss`` per epoch."""

    def __init__(self, hidden: int = 4, lr: float = 0.05, optimizer: dict | None = None,
                 fail_at_batch: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        if self.hparams.fail_at_batch is not None and self.global_step == self.hparams.fail_at_batch:
            raise RuntimeError(f"boom at global step {self.global_step}")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), on_epoch=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class MetricsRecorder(Callback):
    """What Lightning itself reported: ``trainer.callback_metrics`` after each validation
    epoch, with the global step it was logged at."""

    def __init__(self) -> None:
        self.val: list[tuple[int, float]] = []

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.val.append((trainer.global_step, float(trainer.callback_metrics["val_loss"])))
