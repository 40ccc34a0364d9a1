"""Files written before the model library moved still load and give the same numbers.

`tests/fixtures/legacy_4f51619/` was written by electra_tf at commit 4f51619,
when the pre-training objectives lived in `electra_tf.pretraining` and the
task model in `electra_tf.finetuning` (see its README.md): a 2-step tiny
pre-training run (training checkpoint, towers), a classifier fine-tuned
from it, its SavedModel, and the outputs each gave then (`expected.json`).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from helpers import REPO, tiny_pretrain_options

from data_prep.build_pretraining_data import Settings, build
from electra_tf.checkpoints import load_task_model, load_tower
from electra_tf.config import ElectraConfig
from electra_tf.pretraining.job import run_pretraining
from electra_tf.serving import load as load_export

FIXTURE = REPO / "tests" / "fixtures" / "legacy_4f51619"
GENERATOR_POSITIONS = np.array([[1, 2], [3, 4]], np.int32)  # what the writer asked for


@pytest.fixture(scope="module")
def expected():
    return json.loads((FIXTURE / "expected.json").read_text())


def _features(expected):
    return {k: np.asarray(v, np.int32) for k, v in expected["features"].items()}


def test_towers_load_with_the_same_outputs(expected):
    features = _features(expected)
    disc = load_tower(str(FIXTURE / "pretrain" / "discriminator"), "discriminator")
    np.testing.assert_allclose(
        np.asarray(disc(features, training=False)), expected["discriminator"], atol=1e-5
    )
    gen = load_tower(str(FIXTURE / "pretrain" / "generator"), "generator")
    out = gen({**features, "masked_lm_positions": GENERATOR_POSITIONS}, training=False)
    out = next(iter(out.values())) if isinstance(out, dict) else out
    np.testing.assert_allclose(np.asarray(out), expected["generator"], atol=1e-5)


def test_fine_tuned_model_loads_with_the_same_logits(expected):
    model, task = load_task_model(str(FIXTURE / "classifier"))
    assert task["kind"] == "classification" and task["labels"] == ["neg", "neu", "pos"]
    logits = model(_features(expected), training=False)["logits"]
    np.testing.assert_allclose(logits.numpy(), expected["classifier_logits"], atol=1e-5)


def test_saved_model_serves_the_same_outputs(expected):
    loaded = load_export(str(FIXTURE / "serving" / "1"))
    out = loaded.signatures["serving_default"](tf.constant(expected["texts"]))
    for name, value in expected["serving_default"].items():
        np.testing.assert_allclose(out[name].numpy(), value, atol=1e-5)


def test_training_checkpoint_resumes(tmp_path):
    """The old run's checkpoint (model, optimizer, input position) restores
    into today's objective and training goes on from step 2."""
    model_dir = tmp_path / "run"
    shutil.copytree(FIXTURE / "pretrain", model_dir)
    corpus = tmp_path / "corpus.txt"
    words = ["the cat sat on the mat .", "a big red dog ran to the house ."]
    corpus.write_text("\n\n".join(" ".join(words * 3) for _ in range(20)) + "\n")
    vocab = str(FIXTURE / "vocab.txt")
    build(
        Settings(
            inputs=(str(corpus),),
            vocab=vocab,
            output_dir=str(tmp_path / "data"),
            max_seq_length=32,
            num_shards=1,
        )
    )
    saved = json.loads((model_dir / "pretrain_options.json").read_text())
    options = tiny_pretrain_options(
        tmp_path / "data",
        model_dir,
        config=ElectraConfig.from_dict(saved["config"]),
        max_seq_length=32,
        train_batch_size=8,
        eval_batch_size=8,
        num_train_steps=4,
        warmup_steps=1,
        log_every_steps=1,
        save_checkpoints_steps=2,
        shuffle_buffer=10,
        seed=1,
        vocab=vocab,
    )
    log = tmp_path / "log.txt"
    with open(log, "w") as stream:
        results = run_pretraining(options, stream)
    text = log.read_text()
    assert f"Resumed from {model_dir / 'ckpt-2'}" in text, text
    assert "step       1/4" not in text and "step       3/4" in text
    assert results["step"] == 4
    assert os.path.exists(model_dir / "ckpt-4.index")
