"""Shapes, weight sharing/tying, config round-trips, standalone tower save/load."""

import keras
import numpy as np

from electra_tf.checkpoints import load_tower, save_tower
from electra_tf.config import ElectraConfig
from electra_tf.modeling import (
    ElectraBackbone,
    ElectraDiscriminator,
    ElectraGenerator,
    ElectraPretrainer,
)
from electra_tf.modeling.self_attention import attention_bias


def _inputs(b=2, length=12, vocab=100):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, (b, length)).astype(np.int32)
    mask = np.ones((b, length), np.int32)
    mask[1, 8:] = 0
    return {
        "input_ids": ids,
        "input_mask": mask,
        "segment_ids": np.zeros_like(ids),
        "masked_lm_positions": np.array([[1, 2, 3], [4, 5, 0]]),
    }


def test_shapes_and_towers():
    config = ElectraConfig.from_preset("tiny", vocab_size=100)
    x = _inputs()
    assert ElectraBackbone(config)(x).shape == (2, 12, 64)
    assert ElectraBackbone(config, "generator")(x).shape == (2, 12, config.generator_hidden_size)
    assert ElectraDiscriminator(config)(x).shape == (2, 12)
    assert ElectraGenerator(config)(x).shape == (2, 3, 100)


def test_hidden_states_are_the_layers_on_the_way_to_the_output():
    config = ElectraConfig.from_preset("tiny", vocab_size=100)
    encoder = ElectraBackbone(config)
    x = _inputs()
    states = encoder.hidden_states(x)
    assert len(states) == config.num_layers + 1
    np.testing.assert_allclose(states[-1], encoder(x), atol=1e-6)
    # Each state feeds the next layer.
    bias = attention_bias(x["input_mask"], states[0].dtype)
    np.testing.assert_allclose(
        encoder.transformer_layers[0](states[0], bias=bias), states[1], atol=1e-6
    )


def test_pretrainer_shares_embeddings_and_ties_the_mlm_head():
    config = ElectraConfig.from_preset("tiny", vocab_size=100, generator_fraction=0.25)
    model = ElectraPretrainer(config)
    model.build()
    assert model.generator.embeddings is model.discriminator.embeddings
    paths = [v.path for v in model.trainable_variables]
    assert len(paths) == len(set(paths))
    assert sum("token_embedding" in p for p in paths) == 1
    # Tied: the MLM head has a bias but no output kernel of its own.
    head = [p for p in paths if "generator_predictions" in p]
    assert any(p.endswith("output_bias") for p in head) and not any(
        "output_kernel" in p for p in head
    )
    # Each tower projects the 32-wide embeddings to its own width (64, 16).
    assert sum(p.endswith("embeddings_project/kernel") for p in paths) == 2


def test_hidden_padding_does_not_change_real_token_outputs():
    config = ElectraConfig.from_preset("tiny", vocab_size=100, dropout=0.0)
    model = ElectraDiscriminator(config)
    x = _inputs()
    x2 = {k: v.copy() for k, v in x.items()}
    x2["input_ids"][1, 8:] = 7  # change only padded positions
    np.testing.assert_allclose(model(x)[1, :8], model(x2)[1, :8], atol=1e-5)


def test_get_config_round_trips():
    config = ElectraConfig.from_preset("tiny", vocab_size=100)
    for cls in (ElectraDiscriminator, ElectraGenerator):
        model = cls(config)
        clone = cls.from_config(model.get_config())
        assert clone.config == config
    pre = ElectraPretrainer(config, disc_weight=30.0, temperature=0.5)
    assert ElectraPretrainer.from_config(pre.get_config()).get_config() == pre.get_config()


def test_towers_save_and_load_alone(tmp_path):
    config = ElectraConfig.from_preset("tiny", vocab_size=100, dropout=0.0)
    model = ElectraPretrainer(config)
    model.build()
    x = _inputs()
    save_tower(model.discriminator, config, str(tmp_path / "disc"))
    save_tower(model.generator, config, str(tmp_path / "gen"))
    disc = load_tower(str(tmp_path / "disc"), "discriminator")
    gen = load_tower(str(tmp_path / "gen"), "generator")
    np.testing.assert_allclose(disc(x), model.discriminator(x), atol=1e-6)
    np.testing.assert_allclose(gen(x), model.generator(x), atol=1e-6)


def test_the_reference_initialisers_of_the_projection_and_the_replaced_token_logit():
    """google-research/electra builds `embeddings_project` and the
    discriminator's final dense layer with tf.layers.dense and no initializer:
    Glorot uniform, not the truncated normal (0.02) of the other layers."""
    # Embeddings 16 wide: both towers (hidden 64 and 32) project them.
    config = ElectraConfig.from_preset("tiny", vocab_size=100, embedding_size=16)
    model = ElectraPretrainer(config)
    model.build()
    for layer in (
        model.discriminator.backbone.embeddings_project,
        model.generator.backbone.embeddings_project,
        model.discriminator.head.dense_prediction,
    ):
        assert isinstance(layer.kernel_initializer, keras.initializers.GlorotUniform), layer.path
        fan_in, fan_out = layer.kernel.shape
        limit = np.sqrt(6 / (fan_in + fan_out))
        kernel = np.asarray(layer.kernel)
        assert np.abs(kernel).max() <= limit and kernel.std() > 0.4 * limit  # not N(0, 0.02)
    head = model.discriminator.head.dense
    assert np.asarray(head.kernel).std() < 0.03  # the hidden dense keeps the 0.02 normal
