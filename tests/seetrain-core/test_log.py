"""seetrain.init / log / finish: values, steps, validation, read back through the Api."""

import math
import os

import numpy as np
import pytest

import seetrain


class FakeTensor:
    """Duck-typed 0-d tensor: what a torch scalar tensor looks like to seetrain (torch is
    not imported by the core tests on purpose: the core must not need it)."""

    def __init__(self, value, shape=()):
        self._value = value
        self.shape = shape

    def item(self):
        return self._value


def test_init_defaults(tmp_path, monkeypatch):
    project_dir = tmp_path / "my-experiments"
    project_dir.mkdir()
    monkeypatch.chdir(project_dir)
    monkeypatch.delenv("SEETRAIN_DIR")
    run = seetrain.init()
    assert run.project == "my-experiments"
    assert run.dir == os.path.join(str(project_dir), "seetrain")
    assert run.name == run.id
    run.finish()
    assert seetrain.Api(run.dir).run(run.id).status == "finished"


def test_log_scalars_and_steps(_isolated_store):
    run = seetrain.init(project="p", experiment_name="e", description="d", tags=["a", "b"])
    seetrain.log({"loss": 1.0, "acc": 0})           # step 0
    seetrain.log({"loss": 0.5})                      # step 1
    seetrain.log({"loss": 0.25}, step=10)            # explicit
    seetrain.log({"loss": 0.2})                      # 11
    seetrain.log({"train": {"loss": 3, "inner": {"x": True}}}, step=11)
    seetrain.finish()
    r = seetrain.Api().run(run.id)
    assert (r.project, r.name, r.description, r.tags, r.status) == ("p", "e", "d", ["a", "b"], "finished")
    assert r.scalars("loss") == [(0, 1.0), (1, 0.5), (10, 0.25), (11, 0.2)]
    assert r.scalars("acc") == [(0, 0.0)]
    assert r.history(["train/loss", "train/inner/x"]) == [{"step": 11, "train/loss": 3.0, "train/inner/x": 1.0}]
    assert r.keys() == ["acc", "loss", "train/inner/x", "train/loss"]
    assert r.summary == {"acc": 0.0, "loss": 0.2, "train/loss": 3.0, "train/inner/x": 1.0}


def test_nan_inf_numpy_and_tensor_scalars(_isolated_store):
    run = seetrain.init(project="p")
    run.log({"nan": float("nan"), "inf": math.inf, "ninf": -math.inf, "np32": np.float32(1.5),
             "np64": np.float64(2.5), "npint": np.int64(7), "zero_d": np.array(3.25), "tensor": FakeTensor(4.0),
             "npbool": np.bool_(True)})
    run.finish()
    h = seetrain.Api().run(run.id).history()[0]
    assert math.isnan(h["nan"]) and h["inf"] == math.inf and h["ninf"] == -math.inf
    assert (h["np32"], h["np64"], h["npint"], h["zero_d"], h["tensor"], h["npbool"]) == (1.5, 2.5, 7.0, 3.25, 4.0, 1.0)


@pytest.mark.parametrize("bad, type_name", [
    ([1, 2, 3], "list"), (None, "NoneType"), (object(), "object"), ({1, 2}, "set"), (1j, "complex"),
])
def test_bad_value_raises_and_logs_nothing(_isolated_store, bad, type_name):
    run = seetrain.init(project="p")
    run.log({"ok": 1.0})
    with pytest.raises(TypeError) as info:
        run.log({"fine": 2.0, "bad/key": bad})
    assert "'bad/key'" in str(info.value) and type_name in str(info.value)
    run.finish()
    r = seetrain.Api().run(run.id)
    assert r.keys() == ["ok"] and r.history() == [{"step": 0, "ok": 1.0}]
    assert run.step == 0  # the failed call consumed no step


def test_arrays_are_not_scalars(_isolated_store):
    run = seetrain.init(project="p")
    with pytest.raises(TypeError, match=r"'w'.*shape \(3,\)"):
        run.log({"w": np.zeros(3)})
    with pytest.raises(TypeError, match=r"'t'.*shape \(2, 2\)"):
        run.log({"t": FakeTensor(0.0, shape=(2, 2))})
    run.finish()


def test_bad_steps_and_keys(_isolated_store):
    run = seetrain.init(project="p")
    with pytest.raises(ValueError, match=">= 0"):
        run.log({"a": 1}, step=-1)
    with pytest.raises(TypeError, match="int"):
        run.log({"a": 1}, step=1.5)
    with pytest.raises(TypeError, match="bool"):
        run.log({"a": 1}, step=True)
    with pytest.raises(TypeError, match="keys must be str"):
        run.log({1: 1.0})
    with pytest.raises(TypeError, match="mapping"):
        run.log([("a", 1)])
    run.log({"a": 1}, step=np.int64(3))
    run.finish()
    assert seetrain.Api().run(run.id).scalars("a") == [(3, 1.0)]


def test_log_without_run_and_after_finish(_isolated_store):
    with pytest.raises(RuntimeError, match="seetrain.init"):
        seetrain.log({"a": 1})
    run = seetrain.init(project="p")
    run.finish()
    with pytest.raises(RuntimeError, match="finished"):
        run.log({"a": 1})
    run.finish()  # finishing twice is harmless


def test_media_values(_isolated_store, tmp_path):
    from PIL import Image as PILImage

    png = tmp_path / "in.png"
    PILImage.new("RGB", (5, 4), (255, 0, 0)).save(png)
    run = seetrain.init(project="p")
    run.log({
        "img/array": seetrain.Image(np.zeros((6, 8, 3), dtype=np.uint8), caption="zeros"),
        "img/list": [seetrain.Image(np.ones((2, 2))), seetrain.Image(str(png))],
        "sound": seetrain.Audio(np.sin(np.linspace(0, 100, 1600)).astype(np.float32), sample_rate=16000),
        "note": "plain strings are text",
        "doc": seetrain.Text("hello"),
    }, step=5)
    run.finish()
    r = seetrain.Api().run(run.id)
    kinds = r.key_kinds()
    assert kinds == {"img/array": "image", "img/list": "image", "sound": "audio", "note": "text", "doc": "text"}
    [item] = r.media("img/array")
    assert (item.step, item.kind, item.caption) == (5, "image", "zeros")
    assert os.path.commonpath([item.path, r._reader.directory]) == r._reader.directory
    with PILImage.open(item.path) as im:
        assert im.size == (8, 6)
    listed = r.media("img/list")
    assert [m.index for m in listed] == [0, 1]
    with PILImage.open(listed[1].path) as im:
        assert im.size == (5, 4) and im.getpixel((0, 0))[:3] == (255, 0, 0)
    import soundfile

    data, rate = soundfile.read(r.media("sound")[0].path)
    assert rate == 16000 and len(data) == 1600
    assert r.media("note")[0].text == "plain strings are text" and r.media("doc")[0].path is None


def test_disabled_mode_is_a_no_op(tmp_path):
    store = tmp_path / "never"
    run = seetrain.init(project="p", dir=store, mode="disabled", config={"a": 1})
    run.log({"x": object()})  # not even validated: disabled means cheap
    run.config.update({"b": 2})
    assert run.config == {"a": 1, "b": 2}
    run.finish()
    assert not store.exists()


def test_bad_init_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        seetrain.init(project="p", mode="cloud")
    with pytest.raises(ValueError, match="project"):
        seetrain.init(project="  ")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    from seetrain.store import StoreError

    with pytest.raises(StoreError, match="store directory"):
        seetrain.init(project="p", dir=blocker / "sub")


def test_summary_and_files(_isolated_store):
    run = seetrain.init(project="p")
    run.log({"loss": 2.0})
    run.summary.update({"train_runtime": 12.5, "loss": 1.0})
    run.add_file("/ckpt/epoch=1.ckpt", kind="checkpoint", epoch=1)
    run.finish()
    r = seetrain.Api().run(run.id)
    assert r.summary == {"loss": 1.0, "train_runtime": 12.5}  # explicit summary wins
    [f] = r.files()
    assert (f["kind"], f["path"], f["meta"]) == ("checkpoint", "/ckpt/epoch=1.ckpt", {"epoch": 1})


def test_log_from_many_threads(_isolated_store):
    import threading

    run = seetrain.init(project="p")

    def worker(i):
        for s in range(500):
            run.log({f"t{i}": float(s)}, step=s)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    run.finish()
    r = seetrain.Api().run(run.id)
    for i in range(4):
        assert r.scalars(f"t{i}") == [(s, float(s)) for s in range(500)]
