"""One table between our variables and ELECTRA's canonical (Google TF1) names.

Canonical names and shapes are those of google-research/electra checkpoints:
`electra/embeddings/...` (shared), `electra/encoder/layer_N/...` and
`discriminator_predictions/...` for the discriminator, `generator/...` and
`generator_predictions/...` for the generator; dense kernels are
[in, out]. Every other format is converted to and from this one.

The table is built by walking our layer objects, so it does not depend on how
a model is nested (a standalone tower or inside the pretrainer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from electra_tf.compat import keras_hub_encoder_parts, keras_hub_mlm_head_parts
from electra_tf.modeling import (
    ElectraBackbone,
    ElectraDiscriminator,
    ElectraGenerator,
    ElectraPretrainer,
)


@dataclasses.dataclass
class Entry:
    """A canonical name, our variable, and the reshape between them."""

    name: str
    variable: object  # keras.Variable
    to_canonical: Callable[[np.ndarray], np.ndarray]
    from_canonical: Callable[[np.ndarray], np.ndarray]


def identity(x):
    return x


def dense_entries(name, layer):
    """A keras Dense layer's kernel [in, out] and bias."""
    return _kernel_bias(name, layer.kernel, layer.bias)


def _layer_norm(name, layer):
    return [
        Entry(f"{name}/gamma", layer.gamma, identity, identity),
        Entry(f"{name}/beta", layer.beta, identity, identity),
    ]


def _kernel_bias(name, kernel, bias):
    return [
        Entry(f"{name}/kernel", kernel, identity, identity),
        Entry(f"{name}/bias", bias, identity, identity),
    ]


def _einsum_in(name, layer):
    """Q/K/V EinsumDense: kernel [H, heads, d] <-> [H, H]; bias [heads, d] <-> [H]."""
    k_shape = tuple(layer.kernel.shape)
    b_shape = tuple(layer.bias.shape)
    return [
        Entry(
            f"{name}/kernel",
            layer.kernel,
            lambda x: x.reshape(k_shape[0], -1),
            lambda x: x.reshape(k_shape),
        ),
        Entry(f"{name}/bias", layer.bias, lambda x: x.reshape(-1), lambda x: x.reshape(b_shape)),
    ]


def _einsum_out(name, layer):
    """Attention output EinsumDense: kernel [heads, d, H] <-> [H, H]."""
    k_shape = tuple(layer.kernel.shape)
    return [
        Entry(
            f"{name}/kernel",
            layer.kernel,
            lambda x: x.reshape(-1, k_shape[-1]),
            lambda x: x.reshape(k_shape),
        ),
        Entry(f"{name}/bias", layer.bias, identity, identity),
    ]


def embeddings_entries(embeddings) -> list[Entry]:
    p = "electra/embeddings"
    return [
        Entry(f"{p}/word_embeddings", embeddings.token_embedding.embeddings, identity, identity),
        Entry(
            f"{p}/position_embeddings",
            embeddings.position_embedding.position_embeddings,
            identity,
            identity,
        ),
        Entry(
            f"{p}/token_type_embeddings",
            embeddings.segment_embedding.embeddings,
            identity,
            identity,
        ),
        *_layer_norm(f"{p}/LayerNorm", embeddings.layer_norm),
    ]


def encoder_entries(backbone, scope: str) -> list[Entry]:
    """One tower's projection and Transformer layers under `scope` (electra|generator)."""
    entries = []
    if backbone.embeddings_project is not None:
        entries += dense_entries(f"{scope}/embeddings_project", backbone.embeddings_project)
    for i, layer in enumerate(backbone.transformer_layers):
        p = f"{scope}/encoder/layer_{i}"
        a = layer.attention
        entries += _kernel_bias(f"{p}/attention/self/query", a.query_kernel, a.query_bias)
        entries += _kernel_bias(f"{p}/attention/self/key", a.key_kernel, a.key_bias)
        entries += _kernel_bias(f"{p}/attention/self/value", a.value_kernel, a.value_bias)
        entries += _kernel_bias(f"{p}/attention/output/dense", a.output_kernel, a.output_bias)
        entries += _layer_norm(f"{p}/attention/output/LayerNorm", layer.attention_layer_norm)
        entries += _kernel_bias(
            f"{p}/intermediate/dense", layer.intermediate_kernel, layer.intermediate_bias
        )
        entries += _kernel_bias(f"{p}/output/dense", layer.output_kernel, layer.output_bias)
        entries += _layer_norm(f"{p}/output/LayerNorm", layer.output_layer_norm)
    return entries


def keras_hub_encoder_entries(transformer_layers, scope: str) -> list[Entry]:
    """keras-hub TransformerEncoder layers (einsum attention) under `scope`."""
    entries = []
    for i, layer in enumerate(transformer_layers):
        p = f"{scope}/encoder/layer_{i}"
        parts = keras_hub_encoder_parts(layer)
        entries += _einsum_in(f"{p}/attention/self/query", parts["query"])
        entries += _einsum_in(f"{p}/attention/self/key", parts["key"])
        entries += _einsum_in(f"{p}/attention/self/value", parts["value"])
        entries += _einsum_out(f"{p}/attention/output/dense", parts["attention_output"])
        entries += _layer_norm(f"{p}/attention/output/LayerNorm", parts["attention_layer_norm"])
        entries += dense_entries(f"{p}/intermediate/dense", parts["intermediate"])
        entries += dense_entries(f"{p}/output/dense", parts["output"])
        entries += _layer_norm(f"{p}/output/LayerNorm", parts["output_layer_norm"])
    return entries


def discriminator_entries(discriminator, with_embeddings: bool = True) -> list[Entry]:
    entries = embeddings_entries(discriminator.embeddings) if with_embeddings else []
    entries += encoder_entries(discriminator.backbone, "electra")
    entries += dense_entries("discriminator_predictions/dense", discriminator.head.dense)
    entries += dense_entries(
        "discriminator_predictions/dense_1", discriminator.head.dense_prediction
    )
    return entries


def generator_entries(generator, with_embeddings: bool = True) -> list[Entry]:
    entries = embeddings_entries(generator.embeddings) if with_embeddings else []
    entries += encoder_entries(generator.backbone, "generator")
    head = keras_hub_mlm_head_parts(generator.head)
    entries += dense_entries("generator_predictions/dense", head["dense"])
    entries += _layer_norm("generator_predictions/LayerNorm", head["layer_norm"])
    entries.append(Entry("generator_predictions/output_bias", head["bias"], identity, identity))
    return entries


def classifier_entries(model) -> list[Entry]:
    """A classification/regression `ElectraTaskModel`: encoder + `classifier/` head
    (Hugging Face's ElectraForSequenceClassification layout)."""
    entries = embeddings_entries(model.backbone.embeddings)
    entries += encoder_entries(model.backbone, "electra")
    entries += dense_entries("classifier/dense", model.head.dense)
    entries += dense_entries("classifier/out_proj", model.head.out_proj)
    return entries


def pretrainer_entries(pretrainer) -> list[Entry]:
    """Both towers with the shared embeddings once."""
    return discriminator_entries(pretrainer.discriminator) + generator_entries(
        pretrainer.generator, with_embeddings=False
    )


def build(kind: str, config) -> tuple[object, list[Entry]]:
    """A fresh built model of `kind` and its entries.

    kind: "pretrainer" (both towers), "discriminator", "generator" or
    "encoder" (an ElectraBackbone).
    """
    classes = {
        "pretrainer": (ElectraPretrainer, pretrainer_entries),
        "discriminator": (ElectraDiscriminator, discriminator_entries),
        "generator": (ElectraGenerator, generator_entries),
        "encoder": (
            ElectraBackbone,
            lambda m: embeddings_entries(m.embeddings) + encoder_entries(m, "electra"),
        ),
    }
    cls, entries_of = classes[kind]
    model = cls(config)
    model.build()
    return model, entries_of(model)


def export(entries: list[Entry]) -> dict[str, np.ndarray]:
    """Our weights as canonical name -> array."""
    return {e.name: np.asarray(e.to_canonical(np.asarray(e.variable.numpy()))) for e in entries}


def assign(entries: list[Entry], weights: dict[str, np.ndarray], source: str) -> int:
    """Loads canonical weights into our variables; every variable must be found.

    Raises ValueError naming the first missing or mis-shaped variable, so no
    weight is ever left at its random initialisation silently. Returns the
    number of variables loaded.
    """
    missing = [e.name for e in entries if e.name not in weights]
    if missing:
        raise ValueError(
            f"{source}: {len(missing)} of {len(entries)} variables are missing, first "
            f"{missing[0]!r}; is it a checkpoint of this architecture and size?"
        )
    staged = []
    for e in entries:
        value = np.asarray(weights[e.name])
        try:
            ours = e.from_canonical(value)
        except ValueError:
            ours = None
        if ours is None or tuple(ours.shape) != tuple(e.variable.shape):
            raise ValueError(
                f"{source}: variable {e.name!r} has shape {tuple(value.shape)}, which does not "
                f"fit the model's {tuple(e.variable.shape)} (wrong size or configuration?)"
            )
        staged.append((e.variable, ours))
    for variable, value in staged:  # all checked before anything is written
        variable.assign(value.astype(np.float32))
    return len(staged)
