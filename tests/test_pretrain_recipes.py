"""Pre-training recipes: objectives, embedding sharing, temperature, masking, init, Adam."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_pretrain_options

from electra_tf.config import ElectraConfig
from electra_tf.modeling import ElectraPretrainer, MlmPretrainer
from electra_tf.pretraining.job import run_pretraining

VOCAB = 120


def _config(**overrides):
    return ElectraConfig.from_preset("tiny", vocab_size=VOCAB, dropout=0.0, **overrides)


def _batch(seed=0, batch=4, length=16, n=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, size=(batch, length)).astype("int32")
    positions = np.stack([rng.choice(np.arange(1, length), n, replace=False) for _ in ids])
    positions.sort(axis=1)
    return {
        "input_ids": ids,
        "input_mask": np.ones_like(ids),
        "segment_ids": np.zeros_like(ids),
        "masked_lm_positions": positions.astype("int32"),
        "masked_lm_ids": np.take_along_axis(ids, positions, 1).astype("int32"),
        "masked_lm_weights": np.ones(positions.shape, "float32"),
    }


def _gradients(model, batch, variables):
    with tf.GradientTape() as tape:
        out = model._forward(
            batch,
            {"num_masked": 12.0, "num_tokens": 64.0},
            tf.constant([1, 2]),
            training=True,
            step=0,
        )
    return tape.gradient(out["loss"], variables)


def _norm(g):
    return 0.0 if g is None else float(tf.norm(tf.convert_to_tensor(g)))


@pytest.mark.parametrize("gen_weight,disc_weight", [(0.0, 50.0), (1.0, 0.0)])
def test_disentangled_sharing_splits_the_gradients(gen_weight, disc_weight):
    model = ElectraPretrainer(
        _config(), gen_weight=gen_weight, disc_weight=disc_weight, embedding_sharing="disentangled"
    )
    model.build()
    mixed = model.discriminator.embeddings
    table = mixed.shared.token_embedding.embeddings
    assert model.generator.embeddings is mixed.shared
    assert np.all(mixed.token_residual.numpy() == 0)  # zero-initialised
    g_table, g_residual = _gradients(model, _batch(), [table, mixed.token_residual])
    if gen_weight == 0:  # discriminator loss only: the shared table gets nothing
        assert _norm(g_table) == 0.0 and _norm(g_residual) > 0
    else:  # generator loss only: the residual gets nothing
        assert _norm(g_table) > 0 and _norm(g_residual) == 0.0


def test_shared_table_gets_both_gradients_and_none_sharing_splits_tables():
    shared = ElectraPretrainer(_config(), gen_weight=0.0)
    shared.build()
    table = shared.discriminator.embeddings.token_embedding.embeddings
    assert shared.generator.embeddings is shared.discriminator.embeddings
    assert _norm(_gradients(shared, _batch(), [table])[0]) > 0  # the disc loss reaches it

    separate = ElectraPretrainer(_config(), embedding_sharing="none")
    separate.build()
    disc_table = separate.discriminator.embeddings.token_embedding.embeddings
    gen_table = separate.generator.embeddings.token_embedding.embeddings
    assert disc_table.path != gen_table.path
    separate.disc_weight = 0.0
    g_disc, g_gen = _gradients(separate, _batch(), [disc_table, gen_table])
    assert _norm(g_disc) == 0.0 and _norm(g_gen) > 0


def test_disentangled_discriminator_exports_as_a_plain_one():
    model = ElectraPretrainer(_config(), embedding_sharing="disentangled")
    model.build()
    residual = model.discriminator.embeddings.token_residual
    residual.assign(np.random.default_rng(0).normal(0, 0.05, residual.shape).astype("float32"))
    plain = model.export_towers()["discriminator"]
    assert not hasattr(plain.embeddings, "token_residual")
    batch = _batch(1)
    inputs = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
    np.testing.assert_allclose(
        plain(inputs).numpy(), model.discriminator(inputs).numpy(), rtol=1e-5, atol=1e-5
    )


def test_temperature_curriculum_anneals_to_the_final_temperature():
    model = ElectraPretrainer(
        _config(), temperature=1.0, temperature_start=3.0, temperature_anneal_steps=100
    )
    assert float(model.sampling_temperature(0)) == pytest.approx(3.0)
    assert float(model.sampling_temperature(50)) == pytest.approx(2.0)
    assert float(model.sampling_temperature(100)) == pytest.approx(1.0)
    assert float(model.sampling_temperature(500)) == pytest.approx(1.0)
    plain = ElectraPretrainer(_config(), temperature=0.7)
    assert float(plain.sampling_temperature(0)) == pytest.approx(0.7)
    config = ElectraPretrainer.from_config(model.get_config()).get_config()
    assert config == model.get_config()


def test_a_hot_start_samples_more_replacements():
    """The curriculum reaches the sampler: at temperature 1e4 samples are uniform."""
    model = ElectraPretrainer(_config(), temperature_start=1e4, temperature_anneal_steps=10)
    model.build()
    batch = _batch(2, batch=16, n=8)
    # Make the generator confident: its output bias dominates for id 7.
    bias = model.generator.head._bias
    bias.assign(np.where(np.arange(VOCAB) == 7, 30.0, 0.0).astype("float32"))
    hot = model._forward(
        batch,
        {"num_masked": 128.0, "num_tokens": 256.0},
        tf.constant([1, 2]),
        training=False,
        step=0,
    )
    cold = model._forward(
        batch,
        {"num_masked": 128.0, "num_tokens": 256.0},
        tf.constant([1, 2]),
        training=False,
        step=10,
    )
    sampled_hot = hot["sampled"].numpy()
    sampled_cold = cold["sampled"].numpy()
    assert (sampled_cold == 7).all()
    # Uniform over the vocab: 128 draws from 120 ids give about 79 distinct ones.
    assert len(np.unique(sampled_hot)) > 0.5 * sampled_hot.size


def test_bias_correction_follows_the_warmup_and_warns_when_it_starves():
    from electra_tf.optimization import (
        bias_correction_warning,
        resolve_bias_correction,
        uncorrected_update_ratio,
    )

    assert resolve_bias_correction(None, 60) is True
    assert resolve_bias_correction(None, 10_000) is False
    assert resolve_bias_correction(False, 60) is False
    assert resolve_bias_correction(True, 10_000) is True
    assert uncorrected_update_ratio(1) == pytest.approx(0.1 / np.sqrt(0.001))
    assert uncorrected_update_ratio(1000) == pytest.approx(1.26, abs=0.01)
    assert "warmup_steps=60" in bias_correction_warning(False, 60)
    assert bias_correction_warning(True, 60) is None
    assert bias_correction_warning(False, 10_000) is None


def test_mlm_pretrainer_trains_the_encoder_only():
    model = MlmPretrainer(_config())
    model.build()
    names = {v.path for v in model.trainable_variables}
    assert not any("discriminator_predictions" in n for n in names)
    assert any("mlm_predictions" in n for n in names)
    # The MLM head is tied to the encoder's token table.
    assert model.mlm_head.token_embedding is model.discriminator.embeddings.token_embedding
    assert MlmPretrainer.from_config(model.get_config()).get_config() == model.get_config()


def test_dynamic_masks_per_step(unmasked_data, vocab_path):
    """15% of real tokens, 85% [MASK] / 15% kept, specials never, fresh each epoch."""
    from electra_tf.masking import Masker
    from electra_tf.pretraining import data as data_lib
    from electra_tf.vocab import Vocab

    vocab = Vocab.load(vocab_path)
    masker = Masker.from_vocab(
        dict(scheme="electra", rate=0.15, max_predictions=10, whole_word=False), vocab
    )
    data = data_lib.inspect_data(f"{unmasked_data}/pretrain-00000*")
    records = sum(1 for _ in tf.data.TFRecordDataset(list(data.files)))
    # One batch per epoch: batch b of epoch e is then the same records.
    ds = data_lib.pretraining_dataset(
        data, records, seed=5, training=False, masker=masker, repeat=True
    ).take(2)
    epochs = list(ds.as_numpy_iterator())
    batches = 1
    specials = {vocab.cls_id, vocab.sep_id, vocab.pad_id, vocab.mask_id}
    selected = real = kept = 0
    for batch in epochs[:batches]:
        w = batch["masked_lm_weights"] > 0
        rows, cols = np.nonzero(w)
        pos = batch["masked_lm_positions"][rows, cols]
        originals = batch["masked_lm_ids"][rows, cols]
        assert not set(originals.tolist()) & specials  # specials are never selected
        now = batch["input_ids"][rows, pos]
        kept += int(np.sum(now == originals))
        assert set(now[now != originals].tolist()) == {vocab.mask_id}
        selected += int(w.sum())
        real += int(batch["input_mask"].sum())
    assert selected / real == pytest.approx(0.15 * 126 / 128, abs=0.02)  # [CLS]/[SEP] excluded
    assert kept / selected == pytest.approx(0.15, abs=0.03)
    # The same records in the next epoch get other masks.
    first, second = epochs[0], epochs[batches]
    assert first["input_mask"].tolist() == second["input_mask"].tolist()  # the same records
    assert not np.array_equal(first["masked_lm_positions"], second["masked_lm_positions"])


def _options(data_dir, model_dir, **overrides):
    held_out = dict(
        train_data=f"{data_dir}/pretrain-00001*",
        eval_data=f"{data_dir}/pretrain-00000*",
        num_eval_steps=4,
    )
    return tiny_pretrain_options(data_dir, model_dir, **{**held_out, **overrides})


def test_pre_masked_data_with_other_settings_is_refused(masked_data, tmp_path):
    with pytest.raises(ValueError, match=r"masked at rate 0\.15 .* --mask_rate=0\.25"):
        run_pretraining(_options(masked_data, tmp_path, mask_rate=0.25))
    with pytest.raises(ValueError, match="scheme 'electra'.* uses 'bert'"):
        run_pretraining(_options(masked_data, tmp_path, objective="mlm"))


def test_mlm_objective_learns_and_saves_a_discriminator_tower(unmasked_data, tmp_path):
    from electra_tf.checkpoints import load_tower

    results = run_pretraining(
        _options(
            unmasked_data,
            tmp_path,
            objective="mlm",
            learning_rate=3e-3,
            num_train_steps=120,
            log_every_steps=20,
            save_checkpoints_steps=120,
            train_data=f"{unmasked_data}/pretrain-*",
        )
    )
    history = results["train"]
    assert history["mlm_loss"] < 8.0  # from ln(30522) = 10.3
    assert results["eval"]["mlm_loss"] < 8.0 and 0 < results["eval"]["hidden_spread"] <= 1.0
    tower = load_tower(str(tmp_path / "discriminator"), "discriminator")
    assert tower.config.hidden_size == 64
    assert not (tmp_path / "generator").exists()


def test_continued_pretraining_starts_at_the_converted_checkpoint(unmasked_data, tmp_path):
    """ours -> Hugging Face -> ours -> --init_checkpoint: the held-out loss is unchanged."""
    from electra_tf.checkpoints import load_tower, save_tower
    from electra_tf.convert import huggingface

    first = run_pretraining(
        _options(unmasked_data, tmp_path / "a", num_train_steps=30, learning_rate=3e-3)
    )
    converted = tmp_path / "converted"
    for tower in ("discriminator", "generator"):
        huggingface.save(
            load_tower(str(tmp_path / "a" / tower), tower), str(tmp_path / "hf" / tower)
        )
        model, _ = huggingface.load(str(tmp_path / "hf" / tower))
        save_tower(model, model.config, str(converted / tower))
    # One step at learning rate 0 changes no weight (decay is scaled by the rate too).
    second = run_pretraining(
        _options(
            unmasked_data,
            tmp_path / "b",
            init_checkpoint=str(converted),
            num_train_steps=1,
            learning_rate=0.0,
            warmup_steps=0,
        )
    )
    for key in ("gen_loss", "disc_loss", "disc_auc"):
        assert second["eval"][key] == pytest.approx(first["eval"][key], abs=1e-4), key
    fresh = run_pretraining(
        _options(
            unmasked_data, tmp_path / "c", num_train_steps=1, learning_rate=0.0, warmup_steps=0
        )
    )
    # ... and that is not where a fresh model starts. A fresh head already
    # predicts the base rate (disc loss ~0.42), so 30 steps gain about 0.1 on it.
    assert fresh["eval"]["disc_loss"] > first["eval"]["disc_loss"] + 0.05
    assert fresh["eval"]["gen_loss"] > first["eval"]["gen_loss"] + 0.1


def test_discriminator_only_init_gets_a_fresh_generator_of_the_configured_size(
    unmasked_data, tmp_path
):
    from electra_tf.checkpoints import load_tower, save_tower
    from electra_tf.pretraining.job import config_for_init, init_tower_dirs

    run_pretraining(_options(unmasked_data, tmp_path / "a", num_train_steps=5))
    only = tmp_path / "only_disc"
    save_tower(
        load_tower(str(tmp_path / "a" / "discriminator")),
        _options(unmasked_data, "x").config,
        str(only),
    )
    assert set(init_tower_dirs(str(only))) == {"discriminator"}
    config = config_for_init(str(only), {"generator_fraction": 0.25})
    assert config.generator_hidden_size == 16 and config.hidden_size == 64
    results = run_pretraining(
        _options(
            unmasked_data,
            tmp_path / "b",
            config=config,
            init_checkpoint=str(only),
            num_train_steps=5,
        )
    )
    assert results["step"] == 5
    gen = load_tower(str(tmp_path / "b" / "generator"), "generator")
    assert gen.backbone.hidden_size == 16
    with pytest.raises(ValueError, match="no discriminator tower"):
        init_tower_dirs(str(tmp_path / "nowhere"))


def test_disc_prior_sets_only_the_head_bias():
    import keras

    keras.utils.set_random_seed(3)
    plain = ElectraPretrainer(_config())
    plain.build()
    keras.utils.set_random_seed(3)
    prior = ElectraPretrainer(_config(), disc_prior=0.15)
    prior.build()
    bias_path = prior.discriminator.head.dense_prediction.bias.path
    differing = [
        a.path
        for a, b in zip(plain.weights, prior.weights, strict=True)
        if not np.array_equal(a.numpy(), b.numpy())
    ]
    assert differing == [bias_path]
    assert float(prior.discriminator.head.dense_prediction.bias[0]) == pytest.approx(
        np.log(0.15 / 0.85), abs=1e-6
    )
    # The untrained discriminator now predicts the base rate for every token.
    batch = _batch()
    inputs = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
    probs = tf.sigmoid(prior.discriminator(inputs)).numpy()
    assert abs(probs.mean() - 0.15) < 0.03
    assert ElectraPretrainer.from_config(prior.get_config()).disc_prior == 0.15
    with pytest.raises(ValueError, match="disc_prior"):
        ElectraPretrainer(_config(), disc_prior=1.0)


@pytest.mark.parametrize("init,expected", [("prior", np.log(0.2 / 0.8)), ("zero", 0.0)])
def test_disc_bias_init_flag_reaches_the_model(tmp_path, init, expected):
    from electra_tf.pretraining.job import PretrainOptions, build_pretrainer, disc_bias_warning

    options = PretrainOptions(
        config=_config(),
        train_data="unused",
        model_dir=str(tmp_path),
        mask_rate=0.2,
        disc_bias_init=init,
    )
    model = build_pretrainer(options)
    model.build()
    assert float(model.discriminator.head.dense_prediction.bias[0]) == pytest.approx(expected)
    warning = disc_bias_warning(options)
    assert (warning is None) == (init == "prior")
    if warning:
        assert "--disc_bias_init=zero" in warning
    with pytest.raises(ValueError, match="--disc_bias_init"):
        PretrainOptions(
            config=_config(), train_data="unused", model_dir=str(tmp_path), disc_bias_init="x"
        ).validate()
