"""keras-hub `ElectraBackbone` weights -> our encoder (ElectraBackbone).

keras-hub's presets are the released discriminators; its backbone is built
from the same keras-hub layers as ours, so the map is one-to-one. Its pooler
(`pooled_dense`) is not part of ELECTRA's discriminator and is not carried.
"""

from __future__ import annotations

from electra_tf.config import ElectraConfig
from electra_tf.convert import weight_map


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
