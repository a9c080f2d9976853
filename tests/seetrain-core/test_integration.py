"""seetrain.integration: the seed's unified interface, over a real installed adapter."""

import numpy as np
import pytest

import seetrain
from seetrain import integration


@pytest.fixture(autouse=True)
def _adapter(thirdparty_in_process):
    yield
    integration.finish()


def test_init_gives_the_object_of_its_mode(_isolated_store):
    it = integration.init("thirdparty", project="p", experiment_name="e", description="d", config={"lr": 0.1},
                          prefix="cb")
    cb = it.get_callback()
    assert cb is it.get_callback() and cb.run is it.run and cb.prefix == "cb"
    with pytest.raises(TypeError, match="callback mode: use get_callback"):
        it.get_tracker()
    with pytest.raises(TypeError, match="only autolog"):
        it.disable()
    cb.on_step(0, 1.5)
    assert it.get_config() == {"lr": 0.1, "seetrain": {"frameworks": ["thirdparty"]}}
    stats = it.get_stats()
    assert stats["run_id"] == it.run.id and stats["dir"] == it.run.dir and stats["logged"] == {"scalar": 1}
    assert {"errors", "retries", "dropped", "queue_depth", "records_logged"} <= set(stats)
    it.finish()
    run = seetrain.Api().run(it.run.id)
    assert (run.status, run.name, run.description, run.frameworks) == ("finished", "e", "d", ["thirdparty"])
    assert run.scalars("cb/value") == [(0, 1.5)]


def test_shortcut_style_and_run_options(_isolated_store, tmp_path):
    it = integration.init("thirdparty_tracker", project="p", dir=tmp_path / "elsewhere", tags=["t"], group="g")
    tracker = it.get_tracker()
    tracker.log({"loss": 0.5}, step=3)
    integration.finish()
    run = seetrain.Api(tmp_path / "elsewhere").run(it.run.id)
    assert run.tags == ["t"] and run.group == "g" and run.scalars("loss") == [(3, 0.5)]


def test_several_integrations_share_a_run_and_log_once(_isolated_store):
    a = integration.init("thirdparty", project="multi_example")
    b = integration.init("thirdparty_tracker", project="multi_example")
    other = integration.init("thirdparty", project="another_project")
    assert a.run is b.run and other.run is not a.run
    integration.log({"loss": 0.5, "accuracy": 0.95})
    integration.log_scalar("lr", 0.01)
    integration.update_config({"batch_size": 32})
    integration.finish()
    api = seetrain.Api()
    shared = api.run(a.run.id)
    assert shared.frameworks == ["thirdparty", "thirdparty_tracker"] and shared.status == "finished"
    assert shared.history() == [{"step": 0, "loss": 0.5, "accuracy": 0.95}, {"step": 1, "lr": 0.01}]
    assert shared.config["batch_size"] == 32
    assert api.run(other.run.id).history() == shared.history()
    assert integration.active_integrations() == []


def test_finishing_one_of_two_keeps_the_shared_run(_isolated_store):
    a = integration.init("thirdparty", project="p", experiment_name="x")
    b = integration.init("thirdparty_tracker", project="p", experiment_name="x")
    a.finish()
    assert not b.run.finished
    integration.log_scalar("after", 1.0)
    b.finish()
    assert seetrain.Api().run(b.run.id).scalars("after") == [(0, 1.0)]


def test_module_functions_for_each_data_type(_isolated_store):
    integration.init("thirdparty", project="p")
    integration.log_image("prediction", np.zeros((4, 4, 3), dtype=np.uint8), caption="empty")
    integration.log_audio("speech", np.zeros(1600, dtype=np.float32), sample_rate=16000)
    integration.log_text("summary", "done", step=5)
    integration.log_scalar("loss", 0.5, step=6)
    integration.finish()
    [run] = seetrain.Api().runs("p")
    assert run.key_kinds() == {"prediction": "image", "speech": "audio", "summary": "text", "loss": "scalar"}
    assert run.media("prediction")[0].caption == "empty" and run.media("summary")[0].step == 5


def test_with_integration_ends_the_run(_isolated_store):
    with integration.with_integration("thirdparty", project="ctx") as it:
        for i in range(3):
            integration.log_scalar("value", i * 2)
    assert seetrain.Api().run(it.run.id).status == "finished"
    with pytest.raises(ZeroDivisionError):
        with integration.with_integration("thirdparty", project="ctx") as broken:
            1 / 0
    assert seetrain.Api().run(broken.run.id).status == "crashed"


def test_autolog_enable_disable(_isolated_store):
    import seetrain_thirdparty_framework as fw

    original = fw.compute
    it = integration.init("thirdparty_autolog", project="auto")
    assert fw.compute is not original
    it.enable()  # twice: records once
    assert fw.compute(2) == 20.0
    it.disable()
    assert fw.compute is original
    fw.compute(3)
    it.enable()
    fw.compute(4)
    it.finish()
    assert fw.compute is original  # finishing disables
    assert seetrain.Api().run(it.run.id).scalars("compute/result") == [(0, 20.0), (1, 40.0)]


def test_errors_of_the_core_for_missing_adapters(_isolated_store, monkeypatch):
    from seetrain import adapters

    monkeypatch.setattr(adapters, "discover_adapters", lambda: {})
    monkeypatch.setattr(adapters, "_loaded", {})  # as if nothing were installed (no cached adapter either)
    with pytest.raises(adapters.AdapterNotInstalledError, match=r'pip install "seetrain\[keras\]"'):
        integration.init_keras(project="p")


def test_no_integration_falls_back_to_the_active_run(_isolated_store):
    with pytest.raises(RuntimeError, match="init"):
        integration.log({"a": 1})
    run = seetrain.init(project="plain")
    integration.log({"a": 1})
    run.finish()
    assert seetrain.Api().run(run.id).scalars("a") == [(0, 1.0)]


def test_every_shortcut_exists_and_is_documented():
    names = ["init_pytorch_lightning", "init_keras", "init_transformers", "init_ultralytics", "init_accelerate",
             "init_ray_tune", "init_optuna", "init_wandb", "init_mmengine", "init_mmdetection", "init_tensorboard",
             "init_mlflow", "enable_openai_autolog", "enable_zhipuai_autolog", "enable_anthropic_autolog"]
    for name in names:
        fn = getattr(integration, name)
        assert fn.__name__ == name and fn.__doc__ and name in integration.__all__
