"""Fixtures for the Hugging Face adapters: a tiny GPT-2 built from a config, random token ids,
TrainingArguments that run on the CPU without reporting anywhere, and a clean Accelerate state.

Nothing is downloaded: the model is built from a ``GPT2Config`` and needs no tokenizer.
"""

from __future__ import annotations

import pytest

VOCAB = 64
SEQ = 16


class TokenDataset:
    """Random token ids as a causal-LM dataset (labels = inputs), a torch map-style dataset."""

    def __init__(self, n: int, seed: int) -> None:
        import torch

        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _next_token_accuracy(eval_pred) -> dict[str, float]:
    import numpy as np

    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted = np.argmax(logits[:, :-1], axis=-1)
    return {"accuracy": float((predicted == labels[:, 1:]).mean())}


@pytest.fixture
def next_token_accuracy():
    """A real compute_metrics: next-token accuracy of the logits."""
    return _next_token_accuracy


@pytest.fixture
def tiny_gpt2():
    """A 2-layer GPT-2 with hidden size 32 and a 64-token vocabulary (random weights)."""
    from transformers import GPT2Config, GPT2LMHeadModel, set_seed

    set_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=32,
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


@pytest.fixture
def token_data():
    """(train, eval) datasets of random token ids."""
    return TokenDataset(16, seed=1), TokenDataset(8, seed=2)


@pytest.fixture
def training_args(tmp_path):
    """A factory of CPU-only TrainingArguments writing under tmp_path and reporting nowhere."""
    from transformers import TrainingArguments

    def make(**overrides):
        options = dict(
            output_dir=str(tmp_path / "trainer"),
            use_cpu=True,
            report_to="none",
            max_steps=4,
            per_device_train_batch_size=4,
            per_device_eval_batch_size=4,
            learning_rate=1e-3,
            logging_steps=1,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=0,
        )
        options.update(overrides)
        return TrainingArguments(**options)

    return make


@pytest.fixture
def clean_accelerate_state():
    """Accelerate keeps process-wide singletons; reset them after a test, as Accelerate's own
    test cases do, so that each test builds its Accelerator from scratch."""
    yield
    from accelerate.state import AcceleratorState, GradientState, PartialState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    PartialState._reset_state()
