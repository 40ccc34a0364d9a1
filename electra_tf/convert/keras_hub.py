"""keras-hub `ElectraBackbone` weights -> our encoder (ElectraBackbone), and
our encoder -> a keras-hub preset directory (backbone + tokenizer).

keras-hub's presets are the released discriminators; its backbone is built
from the same keras-hub layers as ours, so the map is one-to-one. Its pooler
(`pooled_dense`) is not part of ELECTRA's discriminator and is not carried.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from electra_tf.config import ElectraConfig
from electra_tf.convert import weight_map
from electra_tf.vocab import Vocab


def _entries(backbone) -> list[weight_map.Entry]:
    """keras-hub backbone variables under their canonical names."""

    same = weight_map.identity
    p = "electra/embeddings"
    entries = [
        weight_map.Entry(f"{p}/word_embeddings", backbone.token_embedding.embeddings, same, same),
        weight_map.Entry(
            f"{p}/position_embeddings", backbone.position_embedding.position_embeddings, same, same
        ),
        weight_map.Entry(
            f"{p}/token_type_embeddings", backbone.segment_embedding.embeddings, same, same
        ),
        weight_map.Entry(f"{p}/LayerNorm/gamma", backbone.embeddings_layer_norm.gamma, same, same),
        weight_map.Entry(f"{p}/LayerNorm/beta", backbone.embeddings_layer_norm.beta, same, same),
    ]
    project = getattr(backbone, "embeddings_projection", None)
    if project is not None:
        entries += weight_map.dense_entries("electra/embeddings_project", project)
    return entries + weight_map.keras_hub_encoder_entries(backbone.transformer_layers, "electra")


def load(source):
    """Our ElectraBackbone from a keras-hub ElectraBackbone or a local preset directory."""
    import keras_hub

    backbone = source
    if isinstance(source, str):
        backbone = keras_hub.models.ElectraBackbone.from_preset(source)
    config = ElectraConfig(
        vocab_size=backbone.vocab_size,
        hidden_size=backbone.hidden_dim,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        intermediate_size=backbone.intermediate_dim,
        embedding_size=backbone.embedding_dim,
        hidden_act="gelu_approximate",  # keras-hub's ELECTRA activation
        dropout=backbone.dropout,
        max_position_embeddings=backbone.max_sequence_length,
        type_vocab_size=backbone.num_segments,
    )
    model, entries = weight_map.build("encoder", config)
    canonical = weight_map.export(_entries(backbone))
    weight_map.assign(
        entries, canonical, str(source if isinstance(source, str) else "keras-hub backbone")
    )
    return model


def save(model, directory: str, vocab: str, lower_case: bool | None = None) -> dict:
    """Writes the encoder of `model` (a discriminator or an encoder) and a
    tokenizer of `vocab` as a keras-hub preset directory, which
    `keras_hub.models.ElectraBackbone.from_preset(directory)` and
    `keras_hub.models.ElectraTokenizer.from_preset(directory)` load.

    keras-hub's ELECTRA has no counterpart of the discriminator's head, and
    its `pooled_dense` none in ELECTRA: the preset holds the encoder, and
    `pooled_output` stays at its initialisation. keras-hub's encoder uses the
    tanh GELU: a model trained with the exact one (`hidden_act="gelu"`) gives
    slightly other outputs there. Returns {"max_abs_difference": ...} of the
    two encoders' sequence outputs on a probe batch, and refuses an existing
    `directory`.
    """
    import keras_hub

    encoder = getattr(model, "backbone", model)
    config = encoder.config
    if os.path.exists(directory):
        raise ValueError(f"--output={directory} exists; a preset is written to a new directory")
    vocab_file = Vocab.load(vocab)
    if vocab_file.size != config.vocab_size:
        raise ValueError(
            f"{vocab}: {vocab_file.size} tokens but the model's vocab_size is {config.vocab_size}"
        )
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=config.vocab_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_size,
        embedding_dim=config.embedding_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.dropout,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size,
    )
    ours = weight_map.embeddings_entries(encoder.embeddings) + weight_map.encoder_entries(
        encoder, "electra"
    )
    weight_map.assign(_entries(backbone), weight_map.export(ours), "the encoder")
    tokenizer = keras_hub.models.ElectraTokenizer(
        vocabulary=vocab, lowercase=vocab_file.uncased if lower_case is None else lower_case
    )
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".preset-", dir=parent)
    try:
        backbone.save_to_preset(staging)
        tokenizer.save_to_preset(staging)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"max_abs_difference": _probe_difference(encoder, backbone)}


def _probe_difference(encoder, backbone) -> float:
    """Largest |ours - keras-hub| of the sequence outputs on a random batch."""
    config = encoder.config
    rng = np.random.default_rng(0)
    ids = rng.integers(0, config.vocab_size, (2, 16)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, 10:] = 0
    segments = np.zeros_like(ids)
    segments[:, 8:] = 1
    ours = np.asarray(
        encoder({"input_ids": ids, "input_mask": mask, "segment_ids": segments}, training=False)
    )
    theirs = np.asarray(
        backbone({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})[
            "sequence_output"
        ]
    )
    real = mask.astype(bool)
    return float(np.abs(ours - theirs)[real].max())
