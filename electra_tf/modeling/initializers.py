"""Weight initialisation and activations shared by the ELECTRA layers."""

from __future__ import annotations

import keras


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """BERT/ELECTRA's `create_initializer`: truncated normal, given stddev."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def clone_initializer(initializer: keras.initializers.Initializer):
    """A fresh copy, so weights sharing an initializer config get distinct draws."""
    return initializer.__class__.from_config(initializer.get_config())


def add_dense_weights(layer, name: str, shape: tuple[int, int], initializer) -> None:
    """Adds `{name}_kernel` [in, out] (a clone of `initializer`) and a zero
    `{name}_bias` [out] to `layer`, as attributes of the same names."""
    kernel = layer.add_weight(
        name=f"{name}_kernel", shape=shape, initializer=clone_initializer(initializer)
    )
    bias = layer.add_weight(name=f"{name}_bias", shape=shape[-1:], initializer="zeros")
    setattr(layer, f"{name}_kernel", kernel)
    setattr(layer, f"{name}_bias", bias)


# ElectraConfig.hidden_act names of the GELU variants -> `approximate`.
GELU_APPROXIMATE = {"gelu": False, "gelu_approximate": True}


def activation(name: str):
    """Maps an ElectraConfig.hidden_act to a Keras activation."""
    if name in GELU_APPROXIMATE:
        return lambda x: keras.activations.gelu(x, approximate=GELU_APPROXIMATE[name])
    return keras.activations.get(name)
