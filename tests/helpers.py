"""Helpers several test files share (a module, so Bazel's per-file targets can use it)."""

from __future__ import annotations

from electra_tf.config import ElectraConfig
from electra_tf.pretraining.job import PretrainOptions


def tiny_pretrain_options(data_dir, model_dir, **overrides) -> PretrainOptions:
    """A 20-step `tiny` pre-training run on the length-64 test shards in `data_dir`."""
    config = ElectraConfig.from_preset("tiny", vocab_size=30522, max_position_embeddings=64)
    base = dict(
        config=config,
        train_data=f"{data_dir}/pretrain-*",
        model_dir=str(model_dir),
        max_seq_length=64,
        train_batch_size=16,
        eval_batch_size=16,
        num_train_steps=20,
        learning_rate=1e-3,
        warmup_steps=5,
        log_every_steps=5,
        save_checkpoints_steps=10,
        shuffle_buffer=200,
        seed=3,
    )
    base.update(overrides)
    return PretrainOptions(**base)
