"""SeeTrainVisBackend used directly and through seetrain.integration: the seed's example,
init_mmdetection, lazy start, user errors, and failures that must not break training."""

from __future__ import annotations

import os

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import VISBACKENDS
from mmengine.visualization import BaseVisBackend, Visualizer
from PIL import Image as PILImage

import seetrain
from mm_components import SeeTrainTinyNet, unique_name
from seetrain.errors import get_integration_error_stats
from seetrain.integration import init_mmdetection, init_mmengine
from seetrain_mm import SeeTrainVisBackend


def _pixels(item) -> np.ndarray:
    path = item.path if os.path.isabs(item.path) else os.path.join(seetrain.Api().dir, item.path)
    return np.asarray(PILImage.open(path).convert("RGB"))


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (6, 10, 3), dtype=np.uint8)


def test_registered_under_its_name():
    assert VISBACKENDS.get("SeeTrainVisBackend") is SeeTrainVisBackend
    assert issubclass(SeeTrainVisBackend, BaseVisBackend)


def test_found_from_a_downstream_scope():
    """MMDetection's VISBACKENDS is a child of MMEngine's (scope "mmdet"); a Runner with
    default_scope="mmdet" builds backends through it. A child registry of the same shape
    (mmdet itself does not import here) finds SeeTrainVisBackend through its parent."""
    from mmengine.registry import DefaultScope, Registry

    child = Registry("vis_backend", parent=VISBACKENDS, scope="seetrain_fakedet")
    with DefaultScope.overwrite_default_scope("seetrain_fakedet"):
        backend = child.build(dict(type="SeeTrainVisBackend", init_kwargs=dict(project="scoped")))
    assert type(backend) is SeeTrainVisBackend


def test_seed_example():
    """The MMEngine example of the seed, verbatim but for its values."""
    config = Config(dict(model=dict(type="RetinaNet", depths=(2, 2), neck=[dict(type="FPN")]),
                         optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.02))))
    loss_value, val_loss, val_map, step = 0.75, 0.5, 0.31, 10
    image = _rgb(0)

    # -- the seed ------------------------------------------------------------------------
    integration = init_mmengine(
        project="mmengine_project",
        experiment_name="detection_model"
    )
    backend = integration.get_backend()
    backend.add_config(config)
    backend.add_scalar('train/loss', loss_value, step=step)
    backend.add_scalars({
        'val/loss': val_loss,
        'val/mAP': val_map
    }, step=step)
    backend.add_image('prediction', image, step=step)
    backend.close()
    # --------------------------------------------------------------------------------------

    assert isinstance(backend, SeeTrainVisBackend)
    assert integration.run.finished  # close() ended the run
    [run] = seetrain.Api().runs(project="mmengine_project")
    assert (run.name, run.status, run.frameworks) == ("detection_model", "finished", ["mmengine"])
    assert run.config["model"] == {"type": "RetinaNet", "depths": [2, 2], "neck": [{"type": "FPN"}]}
    assert run.config["optim_wrapper"]["optimizer"]["lr"] == 0.02
    assert run.media("config")[0].text == config.pretty_text
    assert run.scalars("train/loss") == [(10, 0.75)]
    assert run.scalars("val/loss") == [(10, 0.5)]
    assert run.scalars("val/mAP") == [(10, 0.31)]
    [media] = run.media("prediction")
    assert (media.step, media.kind) == (10, "image")
    assert np.array_equal(_pixels(media), image)
    assert get_integration_error_stats("mmengine") == {"mmengine": {}}


def test_init_mmdetection_backend():
    integration = init_mmdetection(project="det", experiment_name="retina")
    backend = integration.get_backend()
    assert isinstance(backend, SeeTrainVisBackend)
    assert backend.experiment is integration.run
    backend.add_scalars({"coco/bbox_mAP": 0.25}, step=1)
    backend.close()
    [run] = seetrain.Api().runs(project="det")
    assert (run.status, run.frameworks) == ("finished", ["mmdetection"])
    assert run.scalars("coco/bbox_mAP") == [(1, 0.25)]


def test_mmdet_alias_and_shared_run():
    """init_mmengine and init_mmdetection for one experiment share one run; closing one
    backend leaves it open for the other."""
    engine = init_mmengine(project="both", experiment_name="e")
    det = seetrain.integration.init("mmdet", project="both", experiment_name="e")
    assert det.framework == "mmdetection" and det.run is engine.run
    engine.get_backend().add_scalar("a", 1.0, step=0)
    engine.get_backend().close()
    assert not det.run.finished
    det.get_backend().add_scalar("b", 2.0, step=1)
    det.get_backend().close()
    assert det.run.finished
    [run] = seetrain.Api().runs(project="both")
    assert run.config["seetrain"]["frameworks"] == ["mmengine", "mmdetection"]
    assert {"a", "b"} <= set(run.keys())


class _DetectionVisualizer(Visualizer):
    """A stand-in for MMDetection's DetLocalVisualizer, which mmdet cannot import here (its
    compiled ops come from mmcv, which has no wheel): like it, a Visualizer subclass whose
    add_datasample draws the boxes with MMEngine's drawing API and hands the drawn RGB image
    to add_image, i.e. to every backend."""

    def add_datasample(self, name, image, data_sample=None, draw_gt=True, draw_pred=True,
                       show=False, wait_time=0, step=0, **kwargs):
        self.set_image(image)
        self.draw_bboxes(np.array([[1, 1, 8, 5]]), edge_colors="r")
        self.add_image(name, self.get_image(), step)


def test_detection_visualizer_path():
    visualizer = _DetectionVisualizer.get_instance(
        unique_name("det-visualizer"),
        vis_backends=[dict(type="SeeTrainVisBackend", init_kwargs=dict(project="det-vis"))])
    # an MMDetection config says default_scope = "mmdet": the run is marked as such
    visualizer.add_config(Config(dict(default_scope="mmdet", model=dict(type="RetinaNet"))))
    image = np.zeros((12, 16, 3), dtype=np.uint8)
    visualizer.add_datasample("val_img", image, step=3)
    visualizer.close()

    [run] = seetrain.Api().runs(project="det-vis")
    assert run.config["seetrain"]["frameworks"] == ["mmengine", "mmdetection"]
    [media] = run.media("val_img")
    drawn = _pixels(media)
    assert media.step == 3 and drawn.shape == (12, 16, 3)
    assert drawn[1, 4, 0] > 200 and drawn[1, 4, 1] < 50  # the red box edge, RGB kept


def test_real_det_local_visualizer():
    """Runs only where mmdet (with mmcv) imports; here it does not (see docs/adapters/mm.md)."""
    mmdet_vis = pytest.importorskip("mmdet.visualization", reason="mmdet (needs compiled mmcv) not importable")
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    visualizer = mmdet_vis.DetLocalVisualizer(
        name=unique_name("det-local"),
        vis_backends=[dict(type="SeeTrainVisBackend", init_kwargs=dict(project="mmdet-real"))])
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=np.array([[1.0, 1.0, 8.0, 5.0]]), labels=np.array([0]))
    visualizer.dataset_meta = {"classes": ("thing",)}
    visualizer.add_datasample("val_img", np.zeros((12, 16, 3), dtype=np.uint8), sample, draw_pred=False, step=2)
    visualizer.close()
    [run] = seetrain.Api().runs(project="mmdet-real")
    assert [m.step for m in run.media("val_img")] == [2]


def test_run_starts_lazily_and_experiment_is_the_run():
    backend = VISBACKENDS.build(dict(type="SeeTrainVisBackend", save_dir=None,
                                     init_kwargs=dict(project="lazy", experiment_name="l1", config={"a": 1})))
    assert seetrain.active_run() is None  # building the backend starts nothing
    run = backend.experiment
    assert isinstance(run, seetrain.Run) and (run.project, run.name) == ("lazy", "l1")
    assert run.config["a"] == 1 and run.frameworks == ["mmengine"]
    backend.add_graph(SeeTrainTinyNet(), None)  # accepted, nothing logged
    backend.close()
    [stored] = seetrain.Api().runs(project="lazy")
    assert stored.status == "finished" and stored.keys() == []


def test_close_then_more_logging_starts_a_new_run():
    """runner.train() closes the visualizer; a later runner.val() logs again."""
    backend = SeeTrainVisBackend(init_kwargs=dict(project="reopen", experiment_name="r"))
    backend.add_scalar("loss", 1.0, step=1)
    first = backend.experiment
    backend.close()
    assert first.finished
    backend.add_scalar("val/acc", 0.5, step=1)
    assert backend.experiment is not first
    backend.close()
    runs = seetrain.Api().runs(project="reopen")
    assert [(r.name, r.status, r.keys()) for r in runs] == [("r", "finished", ["loss"]),
                                                             ("r", "finished", ["val/acc"])]


def test_given_run_is_not_finished_by_close():
    run = seetrain.init(project="given")
    backend = SeeTrainVisBackend(run=run)
    backend.add_scalar("x", 3.0, step=2)
    backend.close()
    assert not run.finished
    assert run.config["seetrain"]["frameworks"] == ["mmengine"]
    run.finish()
    assert seetrain.Api().runs(project="given")[0].scalars("x") == [(2, 3.0)]


def test_active_run_with_another_project_is_not_joined():
    mine = seetrain.init(project="other")
    backend = SeeTrainVisBackend(init_kwargs=dict(project="wanted"))
    backend.add_scalar("x", 1.0)
    assert backend.experiment is not mine and backend.experiment.project == "wanted"
    backend.close()
    assert not mine.finished


def test_joined_run_frameworks_column():
    """A framework added to a run after init reaches the store's frameworks column too."""
    run = seetrain.init(project="joined")
    SeeTrainVisBackend().add_scalar("x", 1.0, step=0)
    run.finish()
    assert seetrain.Api().runs(project="joined")[0].frameworks == ["mmengine"]


def test_user_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"init_kwargs has unknown key\(s\) 'projet'.*project"):
        VISBACKENDS.build(dict(type="SeeTrainVisBackend", init_kwargs=dict(projet="typo")))
    with pytest.raises(TypeError, match="either run= .* or init_kwargs="):
        SeeTrainVisBackend(run=seetrain.init(project="x"), init_kwargs=dict(project="y"))


def test_failures_are_counted_not_raised():
    backend = SeeTrainVisBackend(init_kwargs=dict(project="faults"))
    # MMEngine's own LocalVisBackend takes a list value; SeeTrain stores scalars only: the
    # list is refused (and counted), the other value of the call is still logged
    backend.add_scalars({"ok": 1.5, "curve": [1, 2, 3]}, step=4)
    backend.add_image("broken", np.zeros((2, 2, 2, 2), dtype=np.uint8), step=4)
    backend.add_scalar("ok", 2.5, step=5)
    backend.close()

    stats = get_integration_error_stats("mmengine")["mmengine"]
    assert stats["add_scalars"]["failures"] == 1 and "'curve'" in stats["add_scalars"]["last_error"]
    assert stats["add_image"]["failures"] == 1
    [run] = seetrain.Api().runs(project="faults")
    assert run.scalars("ok") == [(4, 1.5), (5, 2.5)]
    assert "broken" not in run.keys()


def test_a_run_that_cannot_start_does_not_break_training():
    backend = SeeTrainVisBackend(init_kwargs=dict(project="bad-mode", mode="offline"))
    backend.add_scalar("loss", 1.0, step=1)  # must not raise into the training loop
    backend.add_image("img", _rgb(1), step=1)
    backend.close()
    assert backend.experiment is None
    stats = get_integration_error_stats("mmengine")["mmengine"]
    assert stats["init"]["failures"] == 1 and "mode must be one of" in stats["init"]["last_error"]
