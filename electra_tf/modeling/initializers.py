"""Weight initialisation and activations shared by the ELECTRA layers."""

from __future__ import annotations

import keras


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """BERT/ELECTRA's `create_initializer`: truncated normal, given stddev."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def clone_initializer(initializer: keras.initializers.Initializer):
    """A fresh copy, so weights sharing an initializer config get distinct draws."""
    return initializer.__class__.from_config(initializer.get_config())


def activation(name: str):
    """Maps an ElectraConfig.hidden_act to a Keras activation."""
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)
