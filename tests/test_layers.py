"""The training-speed kernels (16-bit dropout, fused GELU, LayerNorm, softmax
cross-entropy) and the Transformer layer."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_python

from electra_tf.kernels import fused_dense, set_fast_kernels
from electra_tf.kernels.dropout import Dropout, dropout_mask
from electra_tf.kernels.fused_dense import dense, pad_intermediate
from electra_tf.kernels.fused_gelu import fused_gelu
from electra_tf.kernels.layer_norm import LayerNorm
from electra_tf.kernels.softmax_cross_entropy import sparse_softmax_cross_entropy
from electra_tf.modeling.self_attention import ElectraSelfAttention, attention_bias
from electra_tf.modeling.transformer_layer import ElectraTransformerLayer


def test_dropout_rate_scale_and_reproducibility():
    x = np.ones((256, 1024), "float32")
    layer = Dropout(0.1, seed=3)
    y = layer(x, training=True).numpy()
    dropped = float(np.mean(y == 0))
    assert abs(dropped - 0.1) < 0.003  # n = 262,144: the std is 0.0006
    kept = np.unique(y[y != 0])
    np.testing.assert_allclose(kept, [65536 / (65536 - 6554)], rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 0.01  # unbiased
    # Each call draws a new mask; the same seed replays the same stream.
    assert not np.array_equal(y, layer(x, training=True).numpy())
    np.testing.assert_array_equal(Dropout(0.1, seed=3)(x, training=True).numpy(), y)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_dropout_odd_sizes_and_extreme_rates():
    x = np.ones((3, 5, 7), "float32")  # an odd number of elements
    y = Dropout(0.5, seed=1)(x, training=True).numpy()
    assert y.shape == x.shape and 0 < np.mean(y == 0) < 1
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)
    np.testing.assert_array_equal(Dropout(1.0)(x, training=True), np.zeros_like(x))
    with pytest.raises(ValueError, match="noise_shape"):
        Dropout(0.1, noise_shape=(1, 5, 7))


def test_dropout_mask_is_16_bit_philox_draws_and_gradient_applies_it():
    # The XLA kernel must produce the draws of TensorFlow's own Philox kernel:
    # word i // 2 of stateless_uniform(uint32), low 16 bits first.
    shape, seed, threshold = (3, 5, 7), tf.constant([11, 22], tf.int64), 6554
    words = tf.random.stateless_uniform(
        [53], seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    ).numpy()
    draws = np.stack([words & 0xFFFF, words >> 16], 1).reshape(-1)[:105].reshape(shape)
    expected = np.where(draws >= threshold, 65536 / (65536 - threshold), 0.0)
    mask = dropout_mask(tf.zeros(shape), seed, threshold).numpy()
    np.testing.assert_allclose(mask, expected, rtol=1e-7)
    # Gradient of the layer is the upstream gradient times the same mask.
    x = tf.random.normal((64, 32))
    layer = Dropout(0.3, seed=5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    dx = tape.gradient(y, x, output_gradients=tf.fill(x.shape, 2.0)).numpy()
    kept = y.numpy() != 0
    np.testing.assert_allclose(dx[kept], 2.0 * 65536 / (65536 - 19661), rtol=1e-6)
    np.testing.assert_array_equal(dx[~kept], 0.0)


@pytest.mark.parametrize("shape", [(24, 40), (40, 24)])  # wide: explicit transpose
def test_dense_matches_matmul_and_its_gradients(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(16, shape[0])), tf.float32)
    kernel = tf.Variable(rng.normal(size=shape).astype("float32"))
    bias = tf.Variable(rng.normal(size=shape[1]).astype("float32"))
    dy = tf.constant(rng.normal(size=(16, shape[1])), tf.float32)

    def grads(fn):
        @tf.function  # graph mode, where Grappler would fold the transpose
        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x, kernel, bias)
            return (y, *tape.gradient(y, [x, kernel, bias], output_gradients=dy))

        return run()

    ours = grads(dense)
    reference = grads(lambda x, k, b: tf.matmul(x, k) + b)
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_dense_sums_a_bfloat16_bias_gradient_in_float32():
    # A bfloat16 running sum stops growing in steps smaller than its spacing
    # (1 at 128-256): BiasAddGrad's CPU kernel, which sums in bfloat16, is off
    # by about a tenth of the largest sum over these 4,096 rows.
    tokens, width = 4096, 64
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(tokens, 8)), tf.bfloat16)
    kernel = tf.constant(rng.normal(size=(8, width)), tf.bfloat16)
    bias = tf.zeros([width], tf.bfloat16)
    # A small common offset, as real gradients have, takes the sums past 128.
    dy = tf.constant(rng.normal(size=(tokens, width)) + 0.05, tf.bfloat16)

    @tf.function
    def bias_gradient():
        with tf.GradientTape() as tape:
            tape.watch(bias)
            y = dense(x, kernel, bias)
        return tape.gradient(y, bias, output_gradients=dy)

    exact = dy.numpy().astype(np.float64).sum(0)
    error = np.abs(bias_gradient().numpy().astype(np.float64) - exact).max()
    # Within one bfloat16 spacing of the largest sum (rounding is half of one).
    assert error <= np.abs(exact).max() / 128, (error, np.abs(exact).max())


def _feed_forward(x, k1, b1, k2, pad):
    with tf.GradientTape() as tape:
        tape.watch([x, k1, b1, k2])
        inner_kernel, inner_bias, outer_kernel = (
            pad_intermediate(k1, b1, k2) if pad else (k1, b1, k2)
        )
        y = dense(tf.nn.gelu(dense(x, inner_kernel, inner_bias)), outer_kernel, tf.zeros([3]))
        loss = tf.reduce_sum(y * tf.range(1.0, 4.0))
    return inner_kernel.shape[1], [y] + tape.gradient(loss, [x, k1, b1, k2])


@pytest.mark.parametrize("width, padded", [(512, 528), (500, 500)])
def test_pad_intermediate_widens_only_aliasing_blocks_and_keeps_values(width, padded):
    rng = np.random.default_rng(0)
    x, k1, b1, k2 = (
        tf.constant(rng.normal(size=s), tf.float32)
        for s in ([6, 4], [4, width], [width], [width, 3])
    )
    _, plain = _feed_forward(x, k1, b1, k2, pad=False)
    widened_width, widened = _feed_forward(x, k1, b1, k2, pad=True)
    assert widened_width == padded
    for a, b in zip(plain, widened):
        assert a.shape == b.shape  # gradients have the variables' own shapes
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_transformer_layer_pads_its_feed_forward_on_aliasing_prone_cpus(monkeypatch):
    keras.utils.set_random_seed(0)
    layer = ElectraTransformerLayer(num_heads=2, intermediate_size=512)
    x = tf.random.normal([2, 5, 16])
    layer(x)

    def run():
        with tf.GradientTape() as tape:
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, 17.0))
        return [y] + tape.gradient(loss, layer.trainable_variables)

    widths = []

    def spy(*weights):
        widened = pad_intermediate(*weights)
        widths.append(widened[0].shape[1])
        return widened

    monkeypatch.setattr(fused_dense, "aliasing_prone_cpu", lambda: False)
    plain = run()
    monkeypatch.setattr(fused_dense, "aliasing_prone_cpu", lambda: True)
    monkeypatch.setattr(fused_dense, "pad_intermediate", spy)
    padded = run()
    assert widths == [528]
    layer(x)  # inference never pads, so exports hold the plain weights
    assert widths == [528]
    for a, b in zip(plain, padded):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.fixture
def uncached_cpu_check():
    # The check is cached per process; a failing assertion must not leave
    # this test's answer behind for the tests that follow.
    fused_dense.aliasing_prone_cpu.cache_clear()
    yield
    fused_dense.aliasing_prone_cpu.cache_clear()


def test_aliasing_prone_cpu_follows_the_onednn_isa_cap(monkeypatch, uncached_cpu_check):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert fused_dense.aliasing_prone_cpu()
    fused_dense.aliasing_prone_cpu.cache_clear()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    has_avx512 = "avx512f" in pathlib.Path("/proc/cpuinfo").read_text()
    assert fused_dense.aliasing_prone_cpu() == (not has_avx512)


@pytest.mark.parametrize("approximate", [False, True])
def test_fused_gelu_matches_tf_gelu_and_its_gradient(approximate):
    x = tf.constant(np.linspace(-6, 6, 1001, dtype="float32").reshape(7, 143))
    dy = tf.constant(np.random.default_rng(0).normal(size=(7, 143)).astype("float32"))
    results = []
    for fn in (fused_gelu, tf.nn.gelu):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x, approximate=approximate)
        results.append((y.numpy(), tape.gradient(y, x, output_gradients=dy).numpy()))
    (y, dx), (y_ref, dx_ref) = results
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-5)


def test_layer_norm_matches_keras_values_and_gradients():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(3.0, 2.0, size=(4, 6, 32)).astype("float32"))
    dy = tf.constant(rng.normal(size=(4, 6, 32)).astype("float32"))
    ours, ref = LayerNorm(epsilon=1e-12), keras.layers.LayerNormalization(epsilon=1e-12)
    for layer in (ours, ref):
        layer.build(x.shape)
        layer.gamma.assign(rng.normal(1.0, 0.3, 32).astype("float32"))
    ref.gamma.assign(ours.gamma.numpy())
    results = []
    for layer in (ours, ref):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        grads = tape.gradient(y, [x, layer.gamma, layer.beta], output_gradients=dy)
        results.append([y.numpy()] + [g.numpy() for g in grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    assert [v.name for v in ours.weights] == ["gamma", "beta"]
    with pytest.raises(ValueError, match="last axis"):
        LayerNorm(axis=1)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_softmax_cross_entropy_matches_tf_values_and_gradients(dtype):
    rng = np.random.default_rng(2)
    # [B, N, V] as the MLM heads give it, with one row far from zero.
    logits = rng.normal(scale=3.0, size=(3, 5, 301)).astype("float32")
    logits[0, 0] += 80.0
    labels = rng.integers(0, 301, size=(3, 5)).astype("int32")
    weights = tf.constant(rng.uniform(size=(3, 5)).astype("float32"))
    x = tf.cast(tf.constant(logits), dtype)
    results = []
    for loss_fn in (
        sparse_softmax_cross_entropy,
        lambda y, z: tf.nn.sparse_softmax_cross_entropy_with_logits(y, tf.cast(z, tf.float32)),
    ):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_fn(labels, x)
            total = tf.reduce_sum(loss * weights)
        grad = tape.gradient(total, x)
        assert loss.dtype == tf.float32 and grad.dtype == x.dtype
        results.append((loss.numpy(), tf.cast(grad, tf.float32).numpy()))
    (loss, grad), (ref_loss, ref_grad) = results
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-6 if dtype == "float32" else 1e-2)


def _layer_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 16)).astype("float32")
    mask = np.ones((2, 9), "int32")
    mask[1, 5:] = 0
    return tf.constant(x), attention_bias(mask, "float32")


@pytest.fixture(params=[True, False], ids=["fast_kernels", "stock_kernels"])
def kernels(request):
    """Runs a layer test with this package's kernels and with the stock ops."""
    set_fast_kernels(request.param)
    yield request.param
    set_fast_kernels(None)


def test_transformer_layer_training_path_matches_inference_path_without_dropout(kernels):
    """With dropout 0, training=True (fused GELU) and training=False (tf.nn.gelu)
    must give the same outputs and the same gradients for every weight."""
    layer = ElectraTransformerLayer(num_heads=2, intermediate_size=32, dropout=0.0)
    x, bias = _layer_inputs()
    layer.build(x.shape)
    outs, grads = [], []
    for training in (True, False):
        with tf.GradientTape() as tape:
            y = layer(x, bias=bias, training=training)
            loss = tf.reduce_sum(y * tf.range(16, dtype="float32"))
        outs.append(y.numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, layer.trainable_variables)])
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    assert len(grads[0]) == 16  # 8 attention, 4 feed-forward, 4 LayerNorm
    for g_train, g_infer in zip(*grads):
        np.testing.assert_allclose(g_train, g_infer, rtol=1e-5, atol=1e-4)


def test_padding_keys_get_no_attention(kernels):
    layer = ElectraSelfAttention(num_heads=2)
    x, bias = _layer_inputs()
    y = layer(x, bias=bias).numpy()
    x2 = x.numpy().copy()
    x2[1, 5:] = 100.0  # change only the padded tokens
    y2 = layer(tf.constant(x2), bias=bias).numpy()
    np.testing.assert_allclose(y[1, :5], y2[1, :5], atol=1e-5)
    unmasked = layer(tf.constant(x2)).numpy()  # no bias: the padding is attended to
    assert not np.allclose(y[1, :5], unmasked[1, :5], atol=1e-3)


def test_frozen_attention_serves_the_same_and_trains_on_the_weights():
    layer = ElectraSelfAttention(num_heads=2)
    x, bias = _layer_inputs()
    before = layer(x, bias=bias).numpy()
    layer.freeze_for_inference()
    assert len(layer.weights) == 8  # the frozen copies are not weights (checkpoints unchanged)
    np.testing.assert_allclose(layer(x, bias=bias).numpy(), before, atol=1e-6)
    layer.query_kernel.assign(layer.query_kernel * 2.0)
    # Inference reads the copies made at freezing; training reads the weights.
    np.testing.assert_allclose(layer(x, bias=bias, training=False).numpy(), before, atol=1e-6)
    assert not np.allclose(layer(x, bias=bias, training=True).numpy(), before, atol=1e-3)


def test_transformer_layer_dropout_is_active_only_in_training(kernels):
    layer = ElectraTransformerLayer(num_heads=2, intermediate_size=32, dropout=0.3)
    x, bias = _layer_inputs()
    a = layer(x, bias=bias, training=True).numpy()
    b = layer(x, bias=bias, training=True).numpy()
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(
        layer(x, bias=bias, training=False), layer(x, bias=bias, training=False)
    )


@pytest.mark.parametrize(
    "layer",
    [
        Dropout(0.2, seed=4),
        LayerNorm(epsilon=1e-12),
        ElectraSelfAttention(num_heads=4, dropout=0.1),
        ElectraTransformerLayer(
            num_heads=4, intermediate_size=64, hidden_act="gelu_approximate", dropout=0.1
        ),
    ],
    ids=["dropout", "layer_norm", "attention", "transformer_layer"],
)
def test_get_config_round_trips(layer, kernels):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)


def test_fast_and_stock_kernels_share_weights_and_agree():
    """One layer, one set of variables: the two kernel sets give the same outputs
    and gradients (so weights trained under one serve under the other)."""
    layer = ElectraTransformerLayer(num_heads=2, intermediate_size=32, dropout=0.0)
    x, bias = _layer_inputs()
    layer.build(x.shape)
    results = []
    for fast in (True, False):
        set_fast_kernels(fast)
        try:
            with tf.GradientTape() as tape:
                y = layer(x, bias=bias, training=True)
                loss = tf.reduce_sum(y * tf.range(16, dtype="float32"))
            grads = tape.gradient(loss, layer.trainable_variables)
        finally:
            set_fast_kernels(None)
        results.append((y.numpy(), [g.numpy() for g in grads]))
    np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_stock_dropout_is_keras_dropout():
    set_fast_kernels(False)
    try:
        layer = Dropout(0.5, seed=3)
        y = layer(np.ones((64, 64), "float32"), training=True).numpy()
    finally:
        set_fast_kernels(None)
    reference = keras.layers.Dropout(0.5, seed=3)(np.ones((64, 64), "float32"), training=True)
    np.testing.assert_array_equal(y, reference.numpy())


@pytest.mark.slow  # a subprocess with two logical CPUs
def test_dropout_masks_differ_between_replicas(tmp_path):
    """Under MirroredStrategy each replica must draw its own mask."""
    script = tmp_path / "replicas.py"
    script.write_text(
        "import numpy as np, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "from electra_tf.kernels.dropout import Dropout\n"
        "strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
        "with strategy.scope():\n"
        "    layer = Dropout(0.5, seed=7)\n"
        "out = strategy.run(tf.function(lambda: layer(tf.ones([64, 64]), training=True)))\n"
        "a, b = (v.numpy() for v in strategy.experimental_local_results(out))\n"
        "assert 0.4 < (a == 0).mean() < 0.6 and 0.4 < (b == 0).mean() < 0.6\n"
        "print('same' if np.array_equal(a, b) else 'different')\n"
    )
    done = run_python(script, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("different")
