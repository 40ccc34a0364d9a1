"""The private APIs electra_tf.compat relies on still exist in the pinned versions."""

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from electra_tf import compat
from electra_tf.config import ElectraConfig
from electra_tf.kernels import Dropout
from electra_tf.modeling import ElectraGenerator


def test_pinned_versions_are_the_checked_ones():
    assert tf.__version__ == compat.CHECKED_VERSIONS["tensorflow"]
    assert keras.__version__ == compat.CHECKED_VERSIONS["keras"]
    assert keras_hub.__version__ == compat.CHECKED_VERSIONS["keras_hub"]


def test_seed_generator_states_finds_every_dropout():
    model = keras.Sequential([keras.Input((4,)), Dropout(0.1, seed=1), Dropout(0.2, seed=2)])
    states = compat.seed_generator_states(model)
    assert len(states) == 2 and all(isinstance(s, keras.Variable) for s in states)


def test_local_resource_under_a_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        variable = keras.Variable(np.ones(3, "float32"))
    assert compat.local_resource(variable).dtype == tf.resource


def test_keras_hub_parts():
    encoder = keras_hub.layers.TransformerEncoder(intermediate_dim=8, num_heads=2)
    encoder.build((None, 4, 8))
    parts = compat.keras_hub_encoder_parts(encoder)
    assert all(isinstance(p, keras.layers.Layer) for p in parts.values()) and len(parts) == 8
    generator = ElectraGenerator(ElectraConfig.from_preset("tiny", vocab_size=50))
    generator.build()
    head = compat.keras_hub_mlm_head_parts(generator.head)
    assert tuple(head["bias"].shape) == (50,)


def test_tf_record_random_reader_reads_at_offsets(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(b"first")
        w.write(b"second")
    reader = compat.tf_record_random_reader(path)
    record, offset = reader.read(0)
    assert record == b"first"
    assert reader.read(offset)[0] == b"second"
