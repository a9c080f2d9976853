"""Copy to tests/seetrain-<key>/: train a tiny real model, read every value back."""

import seetrain


def test_metrics_reach_the_store(recording_sink):
    from seetrain_yourframework import SeeTrainCallback

    callback = SeeTrainCallback(project="template")
    for epoch in range(3):
        callback.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    callback.on_train_end()
    [run] = seetrain.Api().runs("template")
    assert run.scalars("train/loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
