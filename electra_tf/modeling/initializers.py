"""Weight initialisation and activations shared by the ELECTRA layers."""

from __future__ import annotations

import keras


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """BERT/ELECTRA's `create_initializer`: truncated normal, given stddev."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def activation(name: str):
    """Maps an ElectraConfig.hidden_act to a Keras activation."""
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)
