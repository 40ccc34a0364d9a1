"""Every use of a private TensorFlow, Keras or keras-hub API, in one place.

Checked against tensorflow 2.20.0, keras 3.15.1 and keras-hub 0.32.0 (the
versions setup.py pins). `tests/test_compat.py` fails if one of them
disappears, so an upgrade shows here first rather than deep in a run.

One private hook cannot live here because it is a method override:
`StepModel._maybe_symbolic_build` (keras `Trainer`), which this package's
models replace to build explicitly in the strategy scope
(keras-team/keras#20329).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.lib.io import tf_record

CHECKED_VERSIONS = {"tensorflow": "2.20.0", "keras": "3.15.1", "keras_hub": "0.32.0"}


def seed_generator_states(model: keras.Model) -> list[keras.Variable]:
    """The state variables of every `SeedGenerator` in `model` (dropout's RNG).

    Keras does not checkpoint them by default; exact resume needs them.
    Uses `Layer._flatten_layers` and `Layer._seed_generators`.
    """
    states = []
    for layer in sublayers(model):
        for generator in getattr(layer, "_seed_generators", []):
            states.append(generator.state)
    return states


def sublayers(model: keras.Layer) -> list[keras.Layer]:
    """`model` and every layer inside it, recursively (`Layer._flatten_layers`)."""
    return list(model._flatten_layers(include_self=True, recursive=True))


def local_resource(variable) -> tf.Tensor:
    """The resource handle behind a Keras variable: this device's copy under a strategy.

    Uses tf.distribute's `DistributedVariable._get_on_device_or_primary`.
    """
    if isinstance(variable, keras.Variable):
        variable = variable.value
    if hasattr(variable, "_get_on_device_or_primary"):  # a tf.distribute variable
        variable = variable._get_on_device_or_primary()
    return variable.handle


def keras_hub_encoder_parts(layer) -> dict:
    """The sub-layers of a keras-hub `TransformerEncoder`, by role."""
    attention = layer._self_attention_layer
    return {
        "query": attention._query_dense,
        "key": attention._key_dense,
        "value": attention._value_dense,
        "attention_output": attention._output_dense,
        "attention_layer_norm": layer._self_attention_layer_norm,
        "intermediate": layer._feedforward_intermediate_dense,
        "output": layer._feedforward_output_dense,
        "output_layer_norm": layer._feedforward_layer_norm,
    }


def keras_hub_mlm_head_parts(head) -> dict:
    """The transform dense, its layer norm and the output bias of a keras-hub `MaskedLMHead`."""
    return {
        "dense": head._intermediate_dense,
        "layer_norm": head._intermediate_layer_norm,
        "bias": head._bias,
    }


def tf_record_random_reader(path: str):
    """A reader of the TFRecord at a byte offset: `.read(offset) -> (bytes, next_offset)`.

    Raises DataLossError on a bad checksum and IndexError past the last whole
    record. Uses `tensorflow.python.lib.io.tf_record.tf_record_random_reader`
    (no public API reads from an offset or past a bad record).
    """
    return tf_record.tf_record_random_reader(path)


def release_metadata_writer(writer) -> None:
    """Removes the temporary folder of a MediaPipe metadata writer now.

    `MetadataWriter.__del__` removes it otherwise, and when that runs at
    interpreter exit, `os` is already gone: "Exception ignored in:
    MetadataWriter.__del__ ... AttributeError" after a successful run. The
    writer sits in a reference cycle, so drop it and collect afterwards.
    Uses `metadata_writer.MetadataWriter._temp_folder` (mediapipe 1.2), found
    through a task writer's `writer` attribute.
    """
    getattr(writer, "writer", writer)._temp_folder.cleanup()
