"""Fine-tuning end to end on real data: SST-2-like, WNUT-16 NER, the SQuAD fixture;
layer-wise learning rates; resume; the CLI."""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest
from helpers import REPO, run_cli

from data_prep.build_finetuning_data import Settings, build
from electra_tf.checkpoints import load_task_model
from electra_tf.config import ElectraConfig
from electra_tf.finetuning.job import FinetuneOptions, build_model, run_finetuning
from electra_tf.pretraining.job import PretrainOptions, run_pretraining
from electra_tf.vocab import Vocab

DEVNULL = io.StringIO()
TINY = dict(vocab_size=30522, max_position_embeddings=64)


def _prepare(task, input_dir, out, vocab_path, **kwargs):
    build(
        Settings(task, str(input_dir), str(out), vocab_path, max_seq_length=64, **kwargs), DEVNULL
    )
    return str(out)


@pytest.fixture(scope="module")
def pretrained_tiny(masked_data, tmp_path_factory) -> str:
    """`tiny` pre-trained briefly on Moby Dick (the tower fine-tuning starts from).

    Briefly on purpose: at this size the discriminator's AUC peaks (~0.86) after
    a few hundred steps, then falls back towards chance as the generator learns
    the unigram distribution and the encoder's outputs collapse; fine-tuning
    from a collapsed encoder does not learn.
    """
    model_dir = tmp_path_factory.mktemp("pretrained")
    run_pretraining(
        PretrainOptions(
            config=ElectraConfig.from_preset("tiny", **TINY),
            train_data=f"{masked_data}/pretrain-*",
            model_dir=str(model_dir),
            max_seq_length=64,
            train_batch_size=32,
            num_train_steps=250,
            learning_rate=1e-3,
            warmup_steps=60,
            adam_bias_correction=True,
            log_every_steps=50,
            save_checkpoints_steps=250,
            shuffle_buffer=1000,
        ),
        stream=DEVNULL,
    )
    return str(model_dir)


@pytest.fixture(scope="module")
def sst2(shared_data, vocab_path, tmp_path_factory):
    return _prepare("sst-2", shared_data / "sst2_like", tmp_path_factory.mktemp("sst2"), vocab_path)


def _options(data_dir, model_dir, **overrides):
    base = dict(
        data_dir=data_dir,
        model_dir=str(model_dir),
        learning_rate=1e-3,
        adam_bias_correction=True,
        num_train_epochs=1,
        train_batch_size=32,
        log_every_steps=1000,
        seed=1,
    )
    base.update(overrides)
    return FinetuneOptions(**base)


@pytest.mark.slow
def test_sst2_pretrained_beats_majority_and_random_init(sst2, pretrained_tiny, tmp_path):
    budget = dict(num_train_epochs=2)
    tuned = run_finetuning(
        _options(sst2, tmp_path / "pre", init_checkpoint=pretrained_tiny, keep_best=True, **budget),
        DEVNULL,
    )
    random = run_finetuning(
        _options(
            sst2, tmp_path / "rand", config=ElectraConfig.from_preset("tiny", **TINY), **budget
        ),
        DEVNULL,
    )
    majority = 557 / 1056  # dev.tsv's larger class
    accuracy = tuned["final"]["accuracy"]
    print(
        f"SST-2-like dev accuracy: pre-trained {accuracy:.3f}, random init "
        f"{random['final']['accuracy']:.3f}, majority {majority:.3f}"
    )
    assert accuracy > majority + 0.05
    assert len(tuned["evaluations"]) == 2  # one evaluation per epoch
    # the final model is what is reported and saved; the best is kept on request
    model, task = load_task_model(str(tmp_path / "pre" / "final"))
    assert task["labels"] == ["0", "1"] and task["kind"] == "classification"
    metrics = json.loads((tmp_path / "pre" / "metrics.json").read_text())
    assert metrics["final"] == tuned["evaluations"][-1] and metrics["reported"] == "final"
    assert metrics["best_selection"] == "on" and (tmp_path / "pre" / "best").is_dir()
    assert metrics["best"]["accuracy"] >= accuracy
    assert random["best"] is None and not (tmp_path / "rand" / "best").exists()


def test_ner_end_to_end_reports_entity_f1(shared_data, vocab_path, pretrained_tiny, tmp_path):
    data = _prepare("conll", shared_data / "ner", tmp_path / "ner", vocab_path)
    history = run_finetuning(
        _options(data, tmp_path / "model", init_checkpoint=pretrained_tiny, num_train_epochs=0.5),
        DEVNULL,
    )
    best = history["final"]
    assert 0.0 <= best["entity_f1"] <= 1.0
    assert 0.0 < best["token_accuracy"] <= 1.0
    assert {"entity_precision", "entity_recall"} <= set(best)


def test_squad_fixture_trains_decodes_and_scores(shared_data, vocab_path, tmp_path):
    data = _prepare(
        "squad_v1",
        shared_data / "squad",
        tmp_path / "squad",
        vocab_path,
        train_file="tiny_squad_v1.json",
        dev_file="tiny_squad_v1.json",
        doc_stride=32,
        max_query_length=24,
    )
    history = run_finetuning(
        _options(
            data,
            tmp_path / "model",
            config=ElectraConfig.from_preset("tiny", **TINY),
            num_train_epochs=30,
            train_batch_size=4,
            learning_rate=3e-3,
            layerwise_lr_decay=1.0,
        ),
        DEVNULL,
    )
    best = history["final"]
    assert set(best) >= {"exact_match", "f1"}
    predictions = json.loads((tmp_path / "model" / "dev_predictions.json").read_text())
    assert len(predictions) == 5 and all(isinstance(v, str) for v in predictions.values())
    # 30 epochs over the 5 questions it is evaluated on: it has memorised some answers
    assert best["f1"] > 0


def test_layerwise_learning_rates_of_a_task_model(sst2, tmp_path):
    config = ElectraConfig.from_preset("tiny", **TINY)  # 2 layers
    options = _options(sst2, tmp_path, config=config, layerwise_lr_decay=0.5)
    from electra_tf.optimization import layerwise_lr_multipliers
    from electra_tf.tasks.info import load_info

    model, _ = build_model(options, load_info(sst2))
    factors = layerwise_lr_multipliers(model.trainable_variables, config.num_layers, 0.5)
    by_part = {}
    for path, factor in factors.items():
        part = path.split("/")[2] if "/electra/" in path else path.split("/")[1]
        by_part.setdefault(part, set()).add(factor)
    assert by_part == {
        "embeddings": {0.125},  # decay^(layers + 1)
        "embeddings_project": {0.125},
        "layer_0": {0.25},
        "layer_1": {0.5},  # top layer: decay^1
        "classifier": {1.0},  # head: undecayed
    }


def test_vocab_mismatch_is_refused(sst2, tmp_path):
    config = ElectraConfig.from_preset("tiny", vocab_size=1000, max_position_embeddings=64)
    with pytest.raises(ValueError, match="vocab_size=1000 .* 30522-token vocab"):
        run_finetuning(_options(sst2, tmp_path, config=config), DEVNULL)
    with pytest.raises(ValueError, match="no model.weights.h5"):
        run_finetuning(_options(sst2, tmp_path, init_checkpoint=str(tmp_path)), DEVNULL)


def test_data_of_another_vocab_of_the_same_size_is_refused(
    shared_data, vocab_path, pretrained_tiny, tmp_path
):
    from electra_tf.checkpoints import tower_vocab

    tower = pretrained_tiny + "/discriminator"
    assert tower_vocab(tower)["sha256"] == Vocab.load(vocab_path).sha256
    lines = pathlib.Path(vocab_path).read_text(encoding="utf-8").splitlines()
    lines[2000], lines[2001] = lines[2001], lines[2000]  # same size, other ids
    other = tmp_path / "other_vocab.txt"
    other.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = _prepare("sst-2", shared_data / "sst2_like", tmp_path / "data", str(other))
    with pytest.raises(ValueError) as error:
        run_finetuning(_options(data, tmp_path / "m", init_checkpoint=pretrained_tiny), DEVNULL)
    message = str(error.value)
    assert str(other) in message and vocab_path in message and "vocab.json" in message
    assert not (tmp_path / "m" / "finetune_options.json").exists()


def test_cli_resumes_instead_of_retraining(shared_data, vocab_path, tmp_path):
    data = tmp_path / "data"
    run_cli(
        "data_prep.build_finetuning_data", "--task=tsv",
        f"--input_dir={shared_data / 'sst2_like'}", f"--vocab={vocab_path}",
        f"--output_dir={data}", "--max_seq_length=32", check=True,
    )  # fmt: skip
    command = [
        "electra_tf.finetune",
        f"--flagfile={REPO / 'configs' / 'finetune_small.flags'}",
        "--model_size=tiny", f"--data_dir={data}", f"--model_dir={tmp_path / 'model'}",
        "--num_train_epochs=0.1", "--log_every_steps=10",
    ]  # fmt: skip
    first = run_cli(*command)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "26 steps (265/epoch)" in first.stdout  # 0.1 epoch of 8456 examples, batch 32
    assert "Fine-tuning tsv (classification), encoder from" in first.stdout  # the banner
    assert f"outputs: {tmp_path / 'model'} (a checkpoint every" in first.stdout
    assert "final (step 26): accuracy" in first.stdout
    assert "best (" not in first.stdout  # best-epoch selection is opt-in
    second = run_cli(*command)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resumed from" in second.stdout and "Already trained 26 of 26" in second.stdout
    assert "10/26" not in second.stdout  # nothing retrained
    changed = run_cli(*command, "--learning_rate=3e-5")
    assert changed.returncode == 2, changed.stderr[-2000:]
    assert "--learning_rate=3e-05 (the run has 0.0003)" in changed.stderr
    bad = run_cli(*command, "--no_such_flag=1")
    assert bad.returncode == 2 and "no_such_flag" in bad.stderr
    missing = run_cli(*command[:2], f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'm2'}")
    assert missing.returncode == 2 and "finetune_info.json not found" in missing.stderr


def test_squad_v2_with_unanswerable_questions(shared_data, vocab_path, tmp_path):
    data = json.loads((shared_data / "squad" / "tiny_squad_v1.json").read_text())
    for paragraph in data["data"][0]["paragraphs"]:
        for qa in paragraph["qas"]:
            qa["is_impossible"] = False
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas.append({"id": "nope", "question": "What is the capital of Mars?", "answers": [],
                "is_impossible": True})  # fmt: skip
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "v2.json").write_text(json.dumps(data))
    out = _prepare(
        "squad_v2", tmp_path / "in", tmp_path / "data", vocab_path, train_file="v2.json",
        dev_file="v2.json", doc_stride=32, max_query_length=24,
    )  # fmt: skip
    from electra_tf.finetuning.data import finetune_dataset
    from electra_tf.tasks.info import load_info

    info = load_info(out)
    assert info["squad"]["version_2"] and info["splits"]["dev"]["examples"] == 6
    impossible = [
        int(v) for _, labels in finetune_dataset(out, info, "train", 64, False)
        for v in labels["is_impossible"].numpy()
    ]  # fmt: skip
    assert 1 in impossible  # the unanswerable question (and windows without the answer)
    history = run_finetuning(
        _options(out, tmp_path / "model", config=ElectraConfig.from_preset("tiny", **TINY),
                 num_train_epochs=3, train_batch_size=4),
        DEVNULL,
    )  # fmt: skip
    predictions = json.loads((tmp_path / "model" / "dev_predictions.json").read_text())
    ids = {qa["id"] for p in data["data"][0]["paragraphs"] for qa in p["qas"]}
    assert set(predictions) == ids
    assert {"exact_match", "f1"} <= set(history["final"])
    model, task = load_task_model(str(tmp_path / "model" / "final"))
    assert task["with_null"] and model.head.with_null


def test_bfloat16_finetuning_reaches_the_float32_dev_accuracy(sst2_data, sst2_classifier, tmp_path):
    """The same run as the `sst2_classifier` fixture (float32), in mixed bfloat16."""
    float32 = json.loads((pathlib.Path(sst2_classifier).parent / "metrics.json").read_text())
    bf16 = run_finetuning(
        FinetuneOptions(
            data_dir=sst2_data,
            model_dir=str(tmp_path / "bf16"),
            config=ElectraConfig.from_preset("tiny", **TINY),
            learning_rate=1e-3,
            adam_bias_correction=True,
            num_train_epochs=2,
            log_every_steps=1000,
            seed=1,
            mixed_precision="bfloat16",
        ),
        stream=DEVNULL,
    )
    a = float32["evaluations"][-1]["accuracy"]
    b = bf16["evaluations"][-1]["accuracy"]
    assert a > 0.7, a  # the float32 run learned
    assert abs(a - b) <= 0.01, (a, b)
    # The weights stayed float32 (mixed precision computes in bf16 only).
    model, _ = load_task_model(str(tmp_path / "bf16" / "final"))
    assert all(v.dtype == "float32" for v in model.weights)


def test_freeze_encoder_trains_the_head_alone_on_dropout_free_features(
    sst2, pretrained_tiny, tmp_path
):
    """A linear probe: only the head is trainable, the encoder ends exactly as
    pre-training left it and runs without dropout even in training; one
    evaluation, at the end."""
    from electra_tf.checkpoints import find_tower, load_encoder
    from electra_tf.tasks.info import load_info

    options = _options(sst2, tmp_path / "probe", init_checkpoint=pretrained_tiny,
                       freeze_encoder=True, num_train_epochs=0.2, eval_every_epoch=False,
                       dropout=0.5)  # fmt: skip
    model, _ = build_model(options, load_info(sst2))
    assert model.trainable_variables and all(
        "/electra/" not in v.path for v in model.trainable_variables
    )
    seen = []
    encoder_call = model.backbone.call

    def spy(*args, training=None, **kwargs):
        seen.append(training)
        return encoder_call(*args, training=training, **kwargs)

    model.backbone.call = spy
    features = {k: np.ones((2, 16), "int32") for k in ("input_ids", "input_mask")}
    features["segment_ids"] = np.zeros((2, 16), "int32")
    model(features, training=True)
    assert seen == [False]  # the frozen encoder never runs its dropout

    history = run_finetuning(options, stream=DEVNULL)
    assert [e["step"] for e in history["evaluations"]] == [history["step"]]  # the end only
    after, _ = load_task_model(str(tmp_path / "probe" / "final"))
    assert after.config.dropout == 0.5  # --dropout overrides the checkpoint's
    tower = load_encoder(find_tower(pretrained_tiny))
    for b, a in zip(tower.weights, after.backbone.weights):
        np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=a.path)
