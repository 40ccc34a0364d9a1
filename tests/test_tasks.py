"""Task kinds: the registry, heads, losses and what they are averaged over."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.modeling import HfClassificationHead, ReferenceClassificationHead
from electra_tf.modeling.task_model import ElectraTaskModel
from electra_tf.tasks import get_task, kinds

CONFIG = ElectraConfig.from_preset("tiny", vocab_size=60, max_position_embeddings=16, dropout=0.0)


def _features(batch=3, length=8):
    ids = np.random.default_rng(0).integers(5, 60, (batch, length)).astype("int32")
    return {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": 0 * ids}


def test_registry_knows_every_kind_and_names_them_on_error():
    assert kinds() == ("classification", "regression", "span", "tagging")
    with pytest.raises(ValueError, match="unknown task kind 'ranking'.*classification"):
        get_task("ranking")


def test_classification_defaults_to_the_reference_head():
    model = ElectraTaskModel(CONFIG, get_task("classification"), num_labels=3)
    model.build()
    assert isinstance(model.head, ReferenceClassificationHead) and model.head_type == "reference"
    kernels = [v for v in model.head.weights if v.name == "kernel"]
    assert [tuple(k.shape) for k in kernels] == [(CONFIG.hidden_size, 3)]  # no hidden layer
    hf = ElectraTaskModel(CONFIG, get_task("classification"), num_labels=3, head="hf")
    assert isinstance(hf.head, HfClassificationHead)
    with pytest.raises(ValueError, match="--task_head='pooler' .* reference, hf"):
        ElectraTaskModel(CONFIG, get_task("classification"), head="pooler")


def test_regression_has_one_output():
    model = ElectraTaskModel(CONFIG, get_task("regression"), num_labels=5)
    assert model.num_labels == 1
    assert tuple(model(_features())["logits"].shape) == (3, 1)


def test_loss_is_the_mean_over_what_the_task_counts():
    """A train-step loss is sum / global count: tagging counts labelled word-pieces only."""
    task = get_task("tagging")
    labels = {"label_ids": tf.constant([[1, -1, 0, -1], [2, 2, -1, -1]])}
    logits = tf.zeros([2, 4, 3])  # uniform: log(3) per labelled token
    assert float(task.count(labels)) == 4.0
    np.testing.assert_allclose(
        float(task.loss_sum(labels, {"logits": logits})), 4 * np.log(3), rtol=1e-6
    )
    classification = get_task("classification")
    labels = {"label_ids": tf.constant([0, 1, 1])}
    assert float(classification.count(labels)) == 3.0


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_the_model_step_loss_is_the_reference_sum_or_the_mean(reduction):
    model = ElectraTaskModel(
        CONFIG, get_task("classification"), num_labels=2, loss_reduction=reduction
    )
    model.build()
    features, labels = _features(), {"label_ids": np.array([0, 1, 1], "int32")}
    norms = model._normalizers((features, labels))
    out = model._forward((features, labels), norms, tf.constant([0, 0]), training=False)
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels["label_ids"], model(features)["logits"]
    )
    expected = tf.reduce_sum(per_example) if reduction == "sum" else tf.reduce_mean(per_example)
    np.testing.assert_allclose(float(out["loss"]), float(expected), rtol=1e-6)


def test_a_task_json_without_a_head_loads_the_head_it_was_saved_with(tmp_path):
    """Classifiers saved before heads were selectable had the Hugging Face layout."""
    import json

    from electra_tf.checkpoints import load_task_model, save_task_model

    model = ElectraTaskModel(CONFIG, get_task("classification"), num_labels=2, head="hf")
    model.build()
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"t{i}\n" for i in range(60)))
    save_task_model(
        model,
        {"kind": "classification", "num_labels": 2, "with_null": False},
        str(vocab),
        str(tmp_path / "m"),
    )
    task = json.loads((tmp_path / "m" / "task.json").read_text())
    assert "head" not in task
    loaded, _ = load_task_model(str(tmp_path / "m"))
    assert loaded.head_type == "hf"
    np.testing.assert_allclose(
        loaded(_features())["logits"], model(_features())["logits"], atol=1e-6
    )


def test_conversion_to_hugging_face_needs_the_hf_head(tmp_path):
    from electra_tf.convert import huggingface

    model = ElectraTaskModel(CONFIG, get_task("classification"), num_labels=2)
    model.build()
    with pytest.raises(ValueError, match="--task_head=hf"):
        huggingface.save(model, str(tmp_path / "hf"))


def test_joint_span_head_conditions_the_end_on_the_start_and_masks_the_question():
    model = ElectraTaskModel(CONFIG, get_task("span"), with_null=True)
    model.build()
    assert model.head_type == "joint"
    features = _features(batch=2, length=8)
    features["segment_ids"][:, 4:] = 1  # passage = positions 4..7
    labels = {
        "start_positions": np.array([5, 0], "int32"),
        "end_positions": np.array([6, 0], "int32"),
        "is_impossible": np.array([0, 1], "int32"),
        "unique_ids": np.array([1, 2], "int32"),
    }
    out = model._outputs(features, labels, training=False)
    # The question (1..3) is masked; [CLS] (0) and the passage are not.
    assert np.all(out["start_logits"][:, 1:4] < -500) and np.all(out["start_logits"][:, 4:] > -500)
    other = dict(labels, start_positions=np.array([6, 0], "int32"))
    moved = model._outputs(features, other, training=False)
    assert not np.allclose(moved["end_logits"][0], out["end_logits"][0])  # end depends on start
    np.testing.assert_allclose(moved["end_logits"][1], out["end_logits"][1], atol=1e-6)
    beams = model(features)
    assert tuple(beams["end_top_index"].shape) == (2, 8, 8)  # beam 20 capped at the length
    assert np.all(np.isin(beams["start_top_index"][:, :5], [0, 4, 5, 6, 7]))


@pytest.mark.parametrize("head, weight", [("joint", 0.5), ("independent", 1.0)])
def test_answerability_loss_weight(head, weight):
    task = get_task("span")
    task.resolve_head(head)
    labels = {
        "start_positions": tf.constant([1]),
        "end_positions": tf.constant([1]),
        "is_impossible": tf.constant([1]),
    }
    uniform = tf.zeros([1, 4])
    span = 0.5 * 2 * np.log(4)  # mean of two uniform cross-entropies
    outputs = {"start_logits": uniform, "end_logits": uniform, "null_logit": tf.constant([0.0])}
    np.testing.assert_allclose(
        float(task.loss_sum(labels, outputs)), span + weight * np.log(2), rtol=1e-6
    )


def test_gradient_accumulation_of_a_task_model_equals_one_batch():
    """(features, labels) batches split into micro-batches give the same update."""
    import keras

    from electra_tf.optimization import create_optimizer

    features = _features(batch=8)
    labels = {"label_ids": np.array([0, 1] * 4, "int32")}
    weights = []
    for accum in (1, 4):
        keras.utils.set_random_seed(3)
        model = ElectraTaskModel(CONFIG, get_task("classification"), grad_accum_steps=accum)
        model.compile(optimizer=create_optimizer("adamw", 1e-3, 0, 10))
        model.build_all()
        model.train_step((features, labels))
        weights.append([v.numpy() for v in model.trainable_variables])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_squad2_no_answer_threshold_defaults_to_the_reference():
    joint, independent = get_task("span"), get_task("span")
    joint.resolve_head(None)
    independent.resolve_head("independent")
    assert joint.head_type == "joint" and joint.null_threshold() == -2.75
    assert independent.null_threshold() == 0.0
    assert joint.null_threshold(1.5) == 1.5  # --null_score_diff_threshold still wins
