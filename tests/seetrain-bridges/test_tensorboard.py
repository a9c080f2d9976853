"""The TensorBoard bridge against torch.utils.tensorboard and tensorboardX: the event files,
read back with TensorBoard's EventAccumulator, are what they would be without the bridge,
and SeeTrain holds the same values at the same steps."""

from __future__ import annotations

import inspect
import io
import os

import numpy as np
import pytest

import seetrain
import seetrain_bridges
from bridge_readers import event_dirs, read_tfevents

pytest.importorskip("tensorboard")


def _approx_points(points, rel=1e-6):
    """(step, value) pairs: the same steps, values equal up to TensorBoard's float32."""

    class Points(list):
        def __eq__(self, other):
            return (len(other) == len(self) and [s for s, _ in other] == [s for s, _ in self]
                    and [v for _, v in other] == pytest.approx([v for _, v in self], rel=rel))

    return Points(points)


def _writer_class(library):
    if library == "torch":
        pytest.importorskip("torch")
        from torch.utils.tensorboard import SummaryWriter
    else:
        pytest.importorskip("tensorboardX")
        from tensorboardX import SummaryWriter
    return SummaryWriter


def _writer(SummaryWriter, logdir):
    # the keyword differs: torch has log_dir, tensorboardX logdir (and log_dir)
    return SummaryWriter(log_dir=logdir)


def _exercise(SummaryWriter, logdir, rng):
    """One small training-like session with every mirrored method."""
    writer = _writer(SummaryWriter, logdir)
    chw = rng.random((3, 4, 5)).astype(np.float32)
    hwc = rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)
    batch = rng.random((2, 3, 4, 5)).astype(np.float32)
    sound = rng.uniform(-0.9, 0.9, 1600).astype(np.float32)
    hist = rng.normal(0.0, 1.0, 200)
    for step in range(3):
        writer.add_scalar("train/loss", 1.0 / (step + 1), global_step=step)
        writer.add_scalars("lr", {"group0": 0.1 * step, "group1": 0.2}, step)
    writer.add_image("chw", chw, 2)
    writer.add_image("hwc", hwc, 2, dataformats="HWC")
    writer.add_images("batch", batch, 2)
    writer.add_text("notes", "hello tensorboard", 1)
    writer.add_audio("sound", sound, 2, sample_rate=8000)
    writer.add_histogram("weights", hist, 2)
    # a fixed sub-run name (the default is the time) keeps two sessions comparable
    named = "run_name" if "run_name" in inspect.signature(SummaryWriter.add_hparams).parameters else "name"
    writer.add_hparams({"lr": 0.1, "opt": "adam"}, {"hparam/acc": 0.9}, global_step=2, **{named: "hp"})
    writer.add_scalar("no_step", 7.0)
    writer.close()
    return {"chw": chw, "hwc": hwc, "batch": batch, "sound": sound, "hist": hist}


@pytest.mark.parametrize("library", ["torch", "tensorboardX"])
def test_sync_tensorboard_mirrors_every_method(library, tmp_path):
    SummaryWriter = _writer_class(library)
    seetrain_bridges.sync_tensorboard(project="tb")
    logdir = str(tmp_path / "runs" / "exp1")
    inputs = _exercise(SummaryWriter, logdir, np.random.default_rng(0))

    [api_run] = seetrain.Api().runs(project="tb")
    assert api_run.name == "exp1" and api_run.status == "finished"  # close() ended the run it started
    assert api_run.frameworks == ["tensorboard"]
    [logfile] = api_run.files()
    assert logfile["kind"] == "tensorboard" and logfile["path"] == os.path.abspath(logdir)
    assert logfile["meta"]["library"] == library

    main = read_tfevents(logdir)
    tb_loss = [(e.step, e.value) for e in main.Scalars("train/loss")]
    assert api_run.scalars("train/loss") == _approx_points(tb_loss)
    assert [s for s, _ in tb_loss] == [0, 1, 2]
    # add_scalars writes each tag through a writer of its own in a subfolder
    for tag in ("group0", "group1"):
        sub = read_tfevents(os.path.join(logdir, f"lr_{tag}" if library == "torch" else f"lr/{tag}"))
        assert api_run.scalars(f"lr/{tag}") == _approx_points([(e.step, e.value) for e in sub.Scalars("lr")])
    assert api_run.scalars("no_step") == [(0, 7.0)] == [(e.step, e.value) for e in main.Scalars("no_step")]

    from PIL import Image as PILImage

    def tb_pixels(tag):
        [event] = main.Images(tag)
        return event.step, np.asarray(PILImage.open(io.BytesIO(event.encoded_image_string)))

    def our_pixels(key):
        return [(m.step, np.asarray(PILImage.open(m.path))) for m in api_run.media(key)]

    for key in ("chw", "hwc"):
        tb_step, tb_image = tb_pixels(key)
        [(step, ours)] = our_pixels(key)
        assert step == tb_step == 2 and np.array_equal(ours, tb_image)
    assert np.array_equal(our_pixels("hwc")[0][1], inputs["hwc"])
    # add_images: TensorBoard stores one grid, SeeTrain one image per item, same pixels
    batch = our_pixels("batch")
    assert [s for s, _ in batch] == [2, 2] and main.Images("batch")[0].step == 2
    expected = (inputs["batch"].transpose(0, 2, 3, 1) * 255).clip(0, 255).astype(np.uint8)
    assert all(np.array_equal(ours, exp) for (_, ours), exp in zip(batch, expected))

    [text] = api_run.media("notes")
    assert (text.step, text.text) == (1, "hello tensorboard")

    import soundfile

    [tb_audio] = main.Audio("sound")
    tb_samples, tb_rate = soundfile.read(io.BytesIO(tb_audio.encoded_audio_string))
    [clip] = api_run.media("sound")
    our_samples, our_rate = soundfile.read(clip.path)
    assert clip.step == tb_audio.step == 2 and our_rate == tb_rate == 8000
    assert np.allclose(our_samples, tb_samples, atol=2.0 / 32767)  # TensorBoard's 16-bit WAV

    [tb_hist] = main.Histograms("weights")
    h = tb_hist.histogram_value
    mean = h.sum / h.num
    stats = {k: api_run.scalars(f"weights/{k}") for k in ("min", "max", "mean", "std", "count")}
    assert stats["min"] == _approx_points([(2, h.min)]) and stats["max"] == _approx_points([(2, h.max)])
    assert stats["count"] == [(2, h.num)] and stats["mean"] == _approx_points([(2, mean)])
    assert stats["std"] == _approx_points([(2, float(np.sqrt(h.sum_squares / h.num - mean * mean)))])

    assert api_run.config["lr"] == 0.1 and api_run.config["opt"] == "adam"
    assert api_run.scalars("hparam/acc") == [(2, 0.9)] and api_run.summary["hparam/acc"] == 0.9
    # add_hparams' own sub-writer was not mirrored as a second writer / second run
    assert len(seetrain.Api().runs()) == 1 and len(api_run.files()) == 1
    assert seetrain.errors.get_integration_error_stats("tensorboard") == {"tensorboard": {}}


@pytest.mark.parametrize("library", ["torch", "tensorboardX"])
def test_event_files_are_unchanged_by_the_bridge(library, tmp_path):
    SummaryWriter = _writer_class(library)

    def summary(root):
        out = {}
        for d in event_dirs(root):
            acc = read_tfevents(d)
            tags = acc.Tags()
            out[os.path.relpath(d, root)] = {
                "scalars": {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]},
                "images": {t: [(e.step, e.encoded_image_string) for e in acc.Images(t)] for t in tags["images"]},
                "audio": {t: [(e.step, e.encoded_audio_string) for e in acc.Audio(t)] for t in tags["audio"]},
                "histograms": {t: [(e.step, e.histogram_value) for e in acc.Histograms(t)]
                               for t in tags["histograms"]},
                "tensors": sorted(tags["tensors"]),
            }
        return out

    _exercise(SummaryWriter, str(tmp_path / "plain"), np.random.default_rng(1))
    bridge = seetrain_bridges.sync_tensorboard()
    _exercise(SummaryWriter, str(tmp_path / "bridged"), np.random.default_rng(1))
    bridge.disable()
    assert summary(str(tmp_path / "bridged")) == summary(str(tmp_path / "plain"))


def test_init_tensorboard_records_into_the_integration_run(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from seetrain.integration import init_tensorboard

    integration = init_tensorboard(project="tb-int", experiment_name="e1")
    backend = integration.get_backend()
    assert backend.enabled and backend.run is integration.run
    writer = SummaryWriter(log_dir=str(tmp_path / "a"))
    other = SummaryWriter(log_dir=str(tmp_path / "b"))
    writer.add_scalar("train/loss", 0.5, 1)
    other.add_scalar("val/loss", 0.7, 1)
    writer.close()  # the integration's run is shared by both writers: it ends at integration.finish()
    assert not integration.run.finished
    other.close()
    integration.finish()
    [api_run] = seetrain.Api().runs(project="tb-int")
    assert api_run.scalars("train/loss") == [(1, 0.5)] and api_run.scalars("val/loss") == [(1, 0.7)]
    assert sorted(os.path.basename(f["path"]) for f in api_run.files()) == ["a", "b"]


def test_disable_restores_identity(tmp_path):
    from seetrain_bridges._tensorboard import writer_classes

    classes = writer_classes()
    assert {lib for lib, _ in classes} == {"torch", "tensorboardX"}
    before = {(cls, name): fn for _, cls in classes for name, fn in vars(cls).items() if name.startswith(("add_", "close"))}
    bridge = seetrain_bridges.sync_tensorboard()
    seetrain_bridges.sync_tensorboard()
    changed = {key for key, fn in before.items() if vars(key[0])[key[1]] is not fn}
    assert {name for _, name in changed} == {"add_scalar", "add_scalars", "add_image", "add_images", "add_text",
                                             "add_audio", "add_histogram", "add_hparams", "close"}
    assert all(vars(cls)[name].__wrapped__ is before[(cls, name)] for cls, name in changed)
    bridge.disable()
    assert all(vars(cls)[name] is fn for (cls, name), fn in before.items())


def test_failure_inside_seetrain_is_counted_and_swallowed(tmp_path, monkeypatch):
    from tensorboardX import SummaryWriter

    run = seetrain.init(project="tb-broken")
    seetrain_bridges.sync_tensorboard(run=run)

    def broken(*args, **kwargs):
        raise RuntimeError("store exploded")

    monkeypatch.setattr(run, "log", broken)
    writer = SummaryWriter(logdir=str(tmp_path / "x"))
    assert writer.add_scalar("loss", 0.5, 3) is None
    # a value TensorBoard itself refuses: its error, unchanged, and nothing counted for it
    with pytest.raises(Exception) as refused:
        writer.add_image("bad", np.zeros((2, 2, 2, 2, 2)), 0)
    assert "store exploded" not in str(refused.value)
    writer.close()
    assert [(e.step, e.value) for e in read_tfevents(str(tmp_path / "x")).Scalars("loss")] == [(3, 0.5)]
    stats = seetrain.errors.get_integration_error_stats("tensorboard")["tensorboard"]
    assert stats["add_scalar"]["failures"] == 1 and "store exploded" in stats["add_scalar"]["last_error"]
    assert "add_image" not in stats
