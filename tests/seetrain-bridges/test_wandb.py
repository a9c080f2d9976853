"""The W&B bridge against the real wandb, offline: W&B's own record is unchanged and SeeTrain
holds the same values at the same steps."""

from __future__ import annotations

import numpy as np
import pytest

import seetrain
import seetrain_bridges
from bridge_readers import read_wandb, scalar_history, wandb_history

wandb = pytest.importorskip("wandb")


def _one_run(api, project):
    runs = api.runs(project=project)
    assert len(runs) == 1, runs
    return runs[0]


def test_sync_wandb_mirrors_log_steps_commit_config_and_finish(wandb_dir):
    seetrain_bridges.sync_wandb()
    run = wandb.init(project="wb-proj", name="wb-run", config={"lr": 0.1, "layers": [8, 4]}, tags=["a", "b"])
    run.log({"loss": 1.0, "nested": {"x": 2}})            # step 0
    run.log({"acc": 0.5}, commit=False)                    # step 1, open
    wandb.log({"loss": 0.8})                               # wandb.log is run.log: step 1 committed
    run.log({"loss": 0.7}, step=5)                         # jump to 5 (open)
    run.log({"lr_now": 0.01}, step=5)                      # same step
    run.log({"late": 1.0}, step=2)                         # below the current step: W&B drops it
    run.log({"loss": 0.6})                                 # merges into step 5, commits it
    run.log({"loss": 0.5, "text": "hello"})                # step 6
    wandb.config.update({"batch_size": 4})
    run.config.dropout = 0.25
    run.finish()

    wb_rows = wandb_history(read_wandb(run))
    api_run = _one_run(seetrain.Api(), "wb-proj")
    assert api_run.name == "wb-run" and api_run.status == "finished"
    assert set(api_run.tags) == {"a", "b"} and api_run.frameworks == ["wandb"]
    assert {k: api_run.config[k] for k in ("lr", "layers", "batch_size", "dropout")} == {
        "lr": 0.1, "layers": [8, 4], "batch_size": 4, "dropout": 0.25}

    # both sides: the same steps, the same scalar values (W&B nests, SeeTrain flattens with "/")
    assert sorted(wb_rows) == [0, 1, 5, 6]
    ours = scalar_history(api_run)
    assert sorted(ours) == [0, 1, 5, 6]
    for step, row in wb_rows.items():
        flat = {k.replace(".", "/"): v for k, v in row.items() if k != "text"}
        assert ours[step] == pytest.approx(flat), step
    assert "late" not in api_run.keys()
    assert [(m.step, m.text) for m in api_run.media("text")] == [(6, "hello")] == [(6, wb_rows[6]["text"])]


def test_media_images_audio_html_map(wandb_dir):
    seetrain_bridges.sync_wandb()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)
    samples = rng.uniform(-0.5, 0.5, 800).astype(np.float32)
    run = wandb.init(project="wb-media")
    run.log({"img": wandb.Image(pixels, caption="cap"), "clip": wandb.Audio(samples, sample_rate=8000, caption="s"),
             "page": wandb.Html("<b>hi</b>", inject=False),
             "grid": [wandb.Image(pixels), wandb.Image(pixels[::-1])],
             "table": wandb.Table(columns=["a"], data=[[1]]), "loss": 0.5})
    run.finish()

    from PIL import Image as PILImage
    import soundfile

    history = wandb_history(read_wandb(run))
    assert history[0]["img.caption"] == "cap" and history[0]["loss"] == 0.5
    wb_png = np.asarray(PILImage.open(f"{run.settings.files_dir}/{history[0]['img.path']}"))

    api_run = _one_run(seetrain.Api(), "wb-media")
    [img] = api_run.media("img")
    assert img.step == 0 and img.caption == "cap"
    ours = np.asarray(PILImage.open(img.path))
    assert np.array_equal(ours, wb_png) and np.array_equal(ours, pixels)
    assert [m.index for m in api_run.media("grid")] == [0, 1]
    [clip] = api_run.media("clip")
    heard, rate = soundfile.read(clip.path)
    assert rate == 8000 and clip.caption == "s"
    assert np.allclose(heard, samples, atol=1e-4)
    [page] = api_run.media("page")
    assert page.text == "<b>hi</b>"
    assert "table" not in api_run.keys()  # no SeeTrain form: left out, not an error
    assert seetrain.errors.get_integration_error_stats("wandb") == {"wandb": {}}


def test_init_wandb_integration_joins_and_wandb_finish_ends_it(wandb_dir):
    from seetrain.integration import init_wandb

    integration = init_wandb(project="seetrain-proj", experiment_name="exp", config={"seed": 1})
    tracker = integration.get_tracker()
    assert isinstance(tracker, seetrain_bridges.WandbBridge) and tracker.enabled and tracker.run is integration.run
    run = wandb.init(project="other", name="wb", config={"lr": 0.2})
    run.log({"loss": 0.3}, step=3)
    run.finish(exit_code=1)

    api_run = _one_run(seetrain.Api(), "seetrain-proj")
    assert api_run.name == "exp" and api_run.status == "crashed"
    assert api_run.config["seed"] == 1 and api_run.config["lr"] == 0.2
    assert api_run.scalars("loss") == [(3, 0.3)]
    assert seetrain.Api().runs(project="other") == []
    integration.finish()  # already ended: nothing more happens


def test_init_wandb_alone_switches_the_bridge_on(wandb_dir):
    from seetrain.integration import init_wandb

    integration = init_wandb(project="p-alone", experiment_name="e")
    with wandb.init(project="x") as run:
        run.log({"v": 1.0})
    api_run = _one_run(seetrain.Api(), "p-alone")
    assert api_run.scalars("v") == [(0, 1.0)] and api_run.status == "finished"
    assert integration.run.finished


def test_user_run_is_joined_but_left_open(wandb_dir):
    seetrain_bridges.sync_wandb()
    mine = seetrain.init(project="mine")
    run = wandb.init(project="mine-wb")
    run.log({"a": 1.0})
    run.finish()
    assert not mine.finished and mine.frameworks == ["wandb"]
    mine.log({"b": 2.0})
    mine.finish()
    assert _one_run(seetrain.Api(), "mine").scalars("a") == [(0, 1.0)]


def test_run_started_before_sync_is_mirrored_through_wandb_log(wandb_dir):
    run = wandb.init(project="early")
    original_log = wandb.log
    bridge = seetrain_bridges.sync_wandb()
    wandb.log({"a": 1.0})
    bridge.disable()
    assert wandb.log is original_log
    run.finish()
    api_run = _one_run(seetrain.Api(), "early")
    assert api_run.scalars("a") == [(0, 1.0)] and api_run.status == "finished"


def test_disable_restores_identity_and_stops_mirroring(wandb_dir):
    from wandb.sdk.wandb_run import Run

    before = {name: vars(Run)[name] for name in ("log", "_on_start", "_config_callback", "_finish")}
    bridge = seetrain_bridges.sync_wandb()
    again = seetrain_bridges.sync_wandb()
    assert again is bridge
    assert all(vars(Run)[name] is not fn for name, fn in before.items())
    assert vars(Run)["log"].__wrapped__ is before["log"]  # patched once, not wrapped twice
    bridge.disable()
    assert {name: vars(Run)[name] for name in before} == before
    assert all(vars(Run)[name] is fn for name, fn in before.items())
    run = wandb.init(project="after-disable")
    run.log({"a": 1.0})
    run.finish()
    from seetrain.store.schema import StoreNotFoundError

    with pytest.raises(StoreNotFoundError):  # no SeeTrain run was ever started
        seetrain.Api()


def test_wandb_errors_pass_through_unchanged(wandb_dir):
    seetrain_bridges.sync_wandb()
    run = wandb.init(project="raises")
    with pytest.raises(TypeError, match="must be passed a dictionary"):
        run.log([1, 2])
    assert run.log({"ok": 1.0}) is None
    run.finish()
    assert _one_run(seetrain.Api(), "raises").scalars("ok") == [(0, 1.0)]


def test_failure_inside_seetrain_is_counted_and_swallowed(wandb_dir, monkeypatch):
    seetrain_bridges.sync_wandb()
    run = wandb.init(project="broken")
    mirror_run = seetrain.active_run()

    def broken(*args, **kwargs):
        raise RuntimeError("store exploded")

    monkeypatch.setattr(mirror_run, "log", broken)
    run.log({"a": 1.0})          # W&B records it; SeeTrain's failure is only counted
    run.finish()
    assert wandb_history(read_wandb(run))[0] == {"a": 1}
    stats = seetrain.errors.get_integration_error_stats("wandb")["wandb"]
    assert stats["log"]["failures"] == 1 and "store exploded" in stats["log"]["last_error"]


def test_what_wandb_records_is_the_same_with_the_bridge(wandb_dir):
    def session(project):
        run = wandb.init(project=project, config={"lr": 0.1})
        run.log({"a": 1.0, "n": {"x": 2}})
        run.log({"b": 2.0}, commit=False)
        run.log({"a": 3.0}, step=4)
        run.log({"s": "text"})
        wandb.config.update({"bs": 2})
        run.finish()
        records = read_wandb(run)
        config = {}
        for rec in records:
            if rec.get("type") == "config":
                config.update(rec["config"]["update"])
            if rec.get("type") == "run":
                config.update(rec["run"]["config"]["update"])
        return wandb_history(records), {k: v for k, v in config.items() if k != "_wandb"}

    plain = session("plain")
    bridge = seetrain_bridges.sync_wandb()
    bridged = session("bridged")
    bridge.disable()
    assert bridged == plain
    assert plain[0] == {0: {"a": 1, "n.x": 2}, 1: {"b": 2}, 4: {"a": 3, "s": "text"}}


def test_seetrain_init_with_framework_switches_the_bridge_on(wandb_dir):
    mine = seetrain.init(project="fw", framework="wandb")
    run = wandb.init(project="ignored")
    run.log({"a": 1.0})
    run.finish()
    assert not mine.finished  # the user's own run: left to the user
    mine.finish()
    assert _one_run(seetrain.Api(), "fw").scalars("a") == [(0, 1.0)]
