import numpy as np
import pytest
import tensorflow as tf

from electra_tf.optimization import (
    NO_DECAY_PATTERN,
    ElectraAdamW,
    WarmupLinearDecay,
    create_optimizer,
)


def test_schedule_is_warmup_times_linear_decay():
    s = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=100)
    assert float(s(0)) == 0.0
    np.testing.assert_allclose(float(s(5)), 1e-3 * 0.95 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(s(10)), 1e-3 * 0.9, rtol=1e-6)
    np.testing.assert_allclose(float(s(55)), 1e-3 * 0.45, rtol=1e-6)
    assert float(s(100)) == 0.0 and float(s(150)) == 0.0
    np.testing.assert_allclose(float(WarmupLinearDecay(1.0, 0, 10)(0)), 1.0)


def test_adamw_matches_the_reference_update():
    import keras

    lr, wd, b1, b2, eps = 0.1, 0.01, 0.9, 0.999, 1e-6
    kernel = keras.Variable(np.array([1.0, -2.0], np.float32), name="kernel")
    bias = keras.Variable(np.array([0.5], np.float32), name="bias")
    opt = ElectraAdamW(lr, weight_decay=wd)
    ref_k, ref_b = kernel.numpy().copy(), bias.numpy().copy()
    m_k = v_k = np.zeros(2)
    m_b = v_b = np.zeros(1)
    for g_k, g_b in (
        [np.array([0.3, -0.1]), np.array([0.2])],
        [np.array([0.1, 0.4]), np.array([-0.5])],
    ):
        opt.apply([tf.constant(g_k, tf.float32), tf.constant(g_b, tf.float32)], [kernel, bias])
        m_k, v_k = b1 * m_k + (1 - b1) * g_k, b2 * v_k + (1 - b2) * g_k**2
        ref_k = ref_k - lr * (m_k / (np.sqrt(v_k) + eps) + wd * ref_k)  # decays
        m_b, v_b = b1 * m_b + (1 - b1) * g_b, b2 * v_b + (1 - b2) * g_b**2
        ref_b = ref_b - lr * (m_b / (np.sqrt(v_b) + eps))  # bias: no decay
    # 3e-5: the fused kernel computes 1 - β2 in float32 (0.999f -> 1 - β2 is
    # 1.3e-5 off 0.001); the reference computes it in Python.
    np.testing.assert_allclose(kernel.numpy(), ref_k, rtol=3e-5)
    np.testing.assert_allclose(bias.numpy(), ref_b, rtol=3e-5)


def test_adamw_bias_correction_matches_keras_adam_semantics():
    import keras

    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-6
    w = keras.Variable(np.array([1.0, -2.0, 3e-4], np.float32), name="bias")  # no decay
    opt = ElectraAdamW(lr, weight_decay=0.01, bias_correction=True)
    ref, m, v = w.numpy().astype(np.float64), np.zeros(3), np.zeros(3)
    for t, g in enumerate([np.array([0.3, -0.1, 1e-7]), np.array([0.1, 0.4, -2e-7])], 1):
        opt.apply([tf.constant(g, tf.float32)], [w])
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        ref = ref - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(w.numpy(), ref, rtol=3e-5)


def test_weight_decay_exclusions():
    for path in (
        "x/embeddings_layer_norm/gamma",
        "x/dense/bias",
        "x/generator_predictions/output_bias",
    ):
        assert NO_DECAY_PATTERN.search(path)
    assert not NO_DECAY_PATTERN.search("x/layer_0/feedforward_intermediate_dense/kernel")
    assert not NO_DECAY_PATTERN.search("x/embeddings/token_embedding/embeddings")


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="--optimizer"):
        create_optimizer("sgd", 1e-3, 1, 10)
    assert create_optimizer("lamb", 1e-3, 1, 10).name


@pytest.mark.parametrize("exponents", ["paper", "reference"])
def test_layerwise_decay_factors_are_the_documented_ones(exponents):
    """paper: top layer decay^1; reference (the released code): one power more, head 1."""
    from electra_tf.config import ElectraConfig
    from electra_tf.modeling import ElectraDiscriminator
    from electra_tf.optimization import layerwise_lr_multipliers

    model = ElectraDiscriminator(ElectraConfig.from_preset("tiny", vocab_size=50, num_layers=3))
    model.build()
    factors = layerwise_lr_multipliers(
        model.trainable_variables, num_layers=3, decay=0.8, exponents=exponents
    )
    extra = 1 if exponents == "reference" else 0
    by_part = {}
    for path, f in factors.items():
        part = (
            "head"
            if "discriminator_predictions" in path
            else ("emb" if "embeddings" in path else path.split("/layer_")[1].split("/")[0])
        )
        by_part.setdefault(part, set()).add(round(f, 10))
    assert by_part == {
        "head": {1.0},
        "2": {round(0.8 ** (1 + extra), 10)},
        "1": {round(0.8 ** (2 + extra), 10)},
        "0": {round(0.8 ** (3 + extra), 10)},
        "emb": {round(0.8 ** (4 + extra), 10)},
    }


def test_lr_multipliers_scale_the_update_and_the_decay():
    import keras

    lr, wd = 0.1, 0.01
    a = keras.Variable(np.array([1.0, -2.0], np.float32), name="kernel")
    opt = ElectraAdamW(lr, weight_decay=wd, lr_multipliers={a.path: 0.5})
    g = np.array([0.3, -0.1])
    opt.apply([tf.constant(g, tf.float32)], [a])
    m, v = 0.1 * g, 0.001 * g**2
    expected = np.array([1.0, -2.0]) - 0.5 * lr * (
        m / (np.sqrt(v) + 1e-6) + wd * np.array([1.0, -2.0])
    )
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-5)
