"""The Transformers adapter against a real ``Trainer`` training a tiny GPT-2 on the CPU.

Every value is read back through ``seetrain.Api`` and compared with what the Trainer itself
reported (``trainer.state.log_history``, the metrics returned by ``predict()``).
"""

from __future__ import annotations

import logging

import pytest

import seetrain
from seetrain.errors import get_integration_error_stats

pytest.importorskip("transformers")


def expected_series(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """What SeeTrain should hold for Trainer log records, written out independently of the
    adapter: a record with ``<phase>_runtime`` belongs to that phase, others to ``train``;
    ``<phase>_x`` is logged as ``<phase>/x``, keys without the prefix (epoch) as ``<phase>/key``;
    the end-of-training record (``train_loss``) goes to the summary, not to charts. The store
    keeps one point per step, the last logged (an ``evaluate()`` after ``train()`` at the same
    global_step replaces the values of the last in-training evaluation)."""
    series: dict[str, dict[int, float]] = {}
    for record in records:
        record = dict(record)
        step = record.pop("step", None)
        if "train_loss" in record:
            continue
        phase = next((p for p in ("eval", "test") if f"{p}_runtime" in record), "train")
        for key, value in record.items():
            name = f"{phase}/{key[len(phase) + 1:]}" if key.startswith(phase + "_") else f"{phase}/{key}"
            series.setdefault(name, {})[step] = float(value)
    return {name: sorted(points.items()) for name, points in series.items()}


def read_back(api_run, keys) -> dict[str, list[tuple[int, float]]]:
    return {key: api_run.scalars(key) for key in keys}


@pytest.mark.slow
def test_trainer_train_evaluate_predict_match_log_history(tiny_gpt2, token_data, training_args,
                                                          next_token_accuracy):
    from transformers import Trainer

    from seetrain.integration import init_transformers

    integration = init_transformers(project="hf-tiny", experiment_name="gpt2-2layer",
                                    config={"dataset": "random-ids"})
    callback = integration.get_callback()
    from seetrain_hf import SeeTrainCallback

    assert isinstance(callback, SeeTrainCallback) and callback.run is integration.run

    train, evaluation = token_data
    args = training_args(save_strategy="steps", save_steps=2)
    trainer = Trainer(model=tiny_gpt2, args=args, train_dataset=train, eval_dataset=evaluation,
                      compute_metrics=next_token_accuracy, callbacks=[callback])
    trainer.train()
    trainer.evaluate()
    prediction = trainer.predict(evaluation)
    run_id = integration.run.id
    assert not integration.run.finished  # the integration's run outlives train(): evaluate/predict go to it
    integration.finish()

    api_run = seetrain.Api().run(run_id)
    assert api_run.status == "finished"
    assert api_run.project == "hf-tiny" and api_run.name == "gpt2-2layer"
    assert api_run.frameworks == ["transformers"]

    history = trainer.state.log_history
    expected = expected_series(history)
    # the records the issue names are all there
    for key in ("train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "eval/loss",
                "eval/accuracy", "eval/runtime"):
        assert key in expected, key
    # predict() does not go to log_history: its metrics are the ones it returned, at global_step
    step = trainer.state.global_step
    for key, value in prediction.metrics.items():
        expected.setdefault("test/" + key.removeprefix("test_"), []).append((step, float(value)))
    assert "test/loss" in expected and "test/accuracy" in expected

    assert sorted(api_run.keys()) == sorted(expected)
    assert read_back(api_run, expected) == expected
    # the steps are Trainer's global_step: 1..max_steps for training, eval every 2 steps
    assert [s for s, _ in api_run.scalars("train/loss")] == [1, 2, 3, 4]
    assert [s for s, _ in api_run.scalars("eval/loss")] == [2, 4]  # eval_steps=2; evaluate() after at 4

    # end-of-training figures: in the summary, not in a chart
    end = next(r for r in history if "train_runtime" in r)
    summary = api_run.summary
    for key in ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss"):
        assert summary[key] == pytest.approx(end[key])
    assert summary["total_flos"] == pytest.approx(trainer.state.total_flos)
    assert [k for k in api_run.keys() if k.startswith("train/") and ("runtime" in k or "per_second" in k)] == []

    config = api_run.config
    assert config["dataset"] == "random-ids"
    assert config["training_args"]["learning_rate"] == args.learning_rate
    assert config["training_args"]["max_steps"] == 4
    assert config["training_args"]["hub_token"] == "<HUB_TOKEN>"  # tokens are redacted
    assert config["model_class"] == "GPT2LMHeadModel"
    assert config["model_config"]["n_layer"] == 2 and config["model_config"]["n_embd"] == 32
    assert config["num_parameters"] == tiny_gpt2.num_parameters()
    assert config["num_trainable_parameters"] == tiny_gpt2.num_parameters(only_trainable=True)

    checkpoints = [f for f in api_run.files() if f["kind"] == "checkpoint"]
    assert [f["meta"]["step"] for f in checkpoints] == [2, 4]
    assert all(f["path"].endswith(f"checkpoint-{f['meta']['step']}") for f in checkpoints)
    assert get_integration_error_stats() == {}


@pytest.mark.slow
def test_callback_alone_starts_its_own_run_and_ends_it_with_training(tiny_gpt2, token_data, training_args):
    from transformers import Trainer

    from seetrain_hf import SeeTrainCallback

    assert seetrain.active_run() is None
    callback = SeeTrainCallback(project="own", experiment_name="alone", tags=["tiny"])
    train, evaluation = token_data
    trainer = Trainer(model=tiny_gpt2, args=training_args(eval_strategy="no"), train_dataset=train,
                      callbacks=[callback])
    trainer.train()
    run = callback.run
    assert run.finished and run.status == "finished"

    # after its own run ended, an evaluate() reopens that same run (no second run)
    metrics = trainer.evaluate(evaluation)
    assert callback.run.id == run.id and not callback.run.finished
    assert seetrain.Api().run(run.id).status == "running"
    callback.finish()

    [api_run] = seetrain.Api().runs("own")
    assert (api_run.id, api_run.name, api_run.tags, api_run.status) == (run.id, "alone", ["tiny"], "finished")
    assert api_run.frameworks == ["transformers"]
    assert read_back(api_run, ["train/loss"]) == {"train/loss": expected_series(
        trainer.state.log_history)["train/loss"]}
    assert api_run.scalars("eval/loss") == [(trainer.state.global_step, metrics["eval_loss"])]


@pytest.mark.slow
def test_callback_joins_the_active_run_and_leaves_it_open(tiny_gpt2, token_data, training_args,
                                                          next_token_accuracy):
    from transformers import Trainer

    from seetrain_hf import SeeTrainCallback

    run = seetrain.init(project="joined", experiment_name="user-run", config={"note": "mine"})
    train, evaluation = token_data
    trainer = Trainer(model=tiny_gpt2, args=training_args(max_steps=2, eval_strategy="no"), train_dataset=train,
                      eval_dataset=evaluation, compute_metrics=next_token_accuracy,
                      callbacks=[SeeTrainCallback(project="ignored")])
    trainer.train()
    assert not run.finished  # the user's run: the user ends it
    metrics = trainer.evaluate()
    run.finish()

    api_run = seetrain.Api().run(run.id)
    assert api_run.project == "joined" and api_run.config["note"] == "mine"
    assert api_run.config["seetrain"]["frameworks"] == ["transformers"] == api_run.frameworks
    assert api_run.scalars("eval/accuracy") == [(2, metrics["eval_accuracy"])]
    assert seetrain.Api().projects() == ["joined"]


@pytest.mark.slow
def test_finish_on_train_end_false_keeps_its_run_for_evaluate(tiny_gpt2, token_data, training_args):
    from transformers import Trainer

    from seetrain_hf import SeeTrainCallback

    callback = SeeTrainCallback(project="keep", finish_on_train_end=False)
    train, evaluation = token_data
    trainer = Trainer(model=tiny_gpt2, args=training_args(max_steps=2, eval_strategy="no"), train_dataset=train,
                      eval_dataset=evaluation, callbacks=[callback])
    trainer.train()
    assert not callback.run.finished
    metrics = trainer.evaluate()
    callback.finish()
    api_run = seetrain.Api().run(callback.run.id)
    assert api_run.status == "finished"
    assert api_run.scalars("eval/loss") == [(2, metrics["eval_loss"])]


@pytest.mark.slow
def test_a_failing_seetrain_call_is_counted_and_training_goes_on(tiny_gpt2, token_data, training_args,
                                                                 monkeypatch):
    from transformers import Trainer

    from seetrain_hf import SeeTrainCallback

    run = seetrain.init(project="faults")

    # fault injection: the only way to make SeeTrain itself fail inside on_log on demand
    def broken_log(data, step=None):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(run, "log", broken_log)
    trainer = Trainer(model=tiny_gpt2, args=training_args(max_steps=3, eval_strategy="no"),
                      train_dataset=token_data[0], callbacks=[SeeTrainCallback()])
    output = trainer.train()
    assert output.global_step == 3
    stats = get_integration_error_stats("transformers")["transformers"]
    assert stats["on_log"]["failures"] == 3
    assert "disk full" in stats["on_log"]["last_error"]


@pytest.mark.slow
def test_metrics_that_are_not_numbers_are_skipped_with_a_warning(tiny_gpt2, token_data, training_args, caplog,
                                                                 next_token_accuracy):
    from transformers import Trainer

    from seetrain_hf import SeeTrainCallback

    def metrics_with_text(eval_pred):
        return {**next_token_accuracy(eval_pred), "note": "not a number"}

    run = seetrain.init(project="text-metric")
    trainer = Trainer(model=tiny_gpt2, args=training_args(max_steps=1, eval_strategy="no"),
                      train_dataset=token_data[0], eval_dataset=token_data[1],
                      compute_metrics=metrics_with_text, callbacks=[SeeTrainCallback()])
    trainer.train()
    with caplog.at_level(logging.WARNING, logger="seetrain"):
        metrics = trainer.evaluate()
    run.finish()
    assert "'eval/note'" in caplog.text
    api_run = seetrain.Api().run(run.id)
    assert "eval/note" not in api_run.keys()
    assert api_run.scalars("eval/accuracy") == [(1, metrics["eval_accuracy"])]
    assert get_integration_error_stats() == {}


def test_only_the_world_process_zero_logs(training_args):
    from transformers import TrainerControl, TrainerState

    from seetrain_hf import SeeTrainCallback

    callback = SeeTrainCallback(project="rank1")
    state = TrainerState(is_world_process_zero=False, is_local_process_zero=False)
    args = training_args()
    callback.on_train_begin(args, state, TrainerControl())
    callback.on_log(args, state, TrainerControl(), logs={"loss": 1.0})
    callback.on_predict(args, state, TrainerControl(), metrics={"test_loss": 1.0, "test_runtime": 0.1})
    callback.on_train_end(args, state, TrainerControl())
    assert callback.run is None and seetrain.active_run() is None


def test_report_to_seetrain_is_refused_by_transformers(tiny_gpt2, training_args):
    """Transformers 5.24 has no public way to register a report_to name (INTEGRATION_TO_CALLBACK
    is a closed dict read by get_reporting_integration_callbacks), so the docs give the
    callbacks=[...] line instead. This test notices the day that changes."""
    from transformers import Trainer

    with pytest.raises(ValueError, match="seetrain is not supported"):
        Trainer(model=tiny_gpt2, args=training_args(report_to="seetrain", eval_strategy="no"))


def test_run_must_be_a_seetrain_run():
    from seetrain_hf import SeeTrainCallback

    with pytest.raises(TypeError, match="run= must be a seetrain.Run"):
        SeeTrainCallback(run="my-run")


@pytest.mark.parametrize(
    ("logs", "phase", "named"),
    [
        ({"loss": 1.5, "grad_norm": 2.0, "learning_rate": 1e-3, "epoch": 0.5}, "train",
         {"train/loss": 1.5, "train/grad_norm": 2.0, "train/learning_rate": 1e-3, "train/epoch": 0.5}),
        ({"eval_loss": 1.0, "eval_accuracy": 0.2, "eval_runtime": 0.1, "epoch": 1.0}, "eval",
         {"eval/loss": 1.0, "eval/accuracy": 0.2, "eval/runtime": 0.1, "eval/epoch": 1.0}),
        ({"test_loss": 1.0, "test_runtime": 0.1}, "test", {"test/loss": 1.0, "test/runtime": 0.1}),
        # evaluate(eval_dataset={"valid": ...}) prefixes with eval_valid
        ({"eval_valid_loss": 1.0, "eval_valid_runtime": 0.1}, "eval_valid",
         {"eval/valid/loss": 1.0, "eval/valid/runtime": 0.1}),
        # a custom metric_key_prefix
        ({"val_loss": 1.0, "val_runtime": 0.1}, "val", {"val/loss": 1.0, "val/runtime": 0.1}),
        # include_num_input_tokens_seen adds train speed metrics to every step record
        ({"loss": 1.0, "num_input_tokens_seen": 64, "train_runtime": 1.0, "train_tokens_per_second": 64.0},
         "train", {"train/loss": 1.0, "train/num_input_tokens_seen": 64, "train/runtime": 1.0,
                   "train/tokens_per_second": 64.0}),
    ],
)
def test_metrics_are_named_by_phase(logs, phase, named):
    from seetrain_hf._transformers import metrics_by_phase

    assert metrics_by_phase(logs) == (phase, named)
