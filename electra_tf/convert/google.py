"""google-research/electra TF1 checkpoints -> ours (discriminator, generator or both).

Sizes are read off the variable shapes: hidden and intermediate widths, the
number of layers of each tower, embedding and vocab sizes; heads follow the
reference rule `max(1, hidden // 64)` (true of every released model). GELU
is the exact erf form, as the reference's `model/modeling.py` computes it
(`0.5 * x * (1 + erf(x / sqrt(2)))`) for the encoder and both heads.
"""

from __future__ import annotations

import re

import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.convert import weight_map

TOWERS = ("both", "discriminator", "generator")
# Optimizer slots and bookkeeping in released checkpoints.
_IGNORED = re.compile(r"/adam_[mv]$|^global_step$|^beta[12]_power")
_OURS = re.compile(r"^(electra|generator|discriminator_predictions|generator_predictions)/")


def _tower_sizes(shapes: dict, scope: str) -> dict | None:
    query = f"{scope}/encoder/layer_0/attention/self/query/kernel"
    if query not in shapes:
        return None
    hidden = shapes[query][1]
    layers = len(
        {m.group(1) for k in shapes if (m := re.match(rf"{scope}/encoder/layer_(\d+)/", k))}
    )
    inner = shapes[f"{scope}/encoder/layer_0/intermediate/dense/kernel"][1]
    return {"hidden": hidden, "layers": layers, "inner": inner, "heads": max(1, hidden // 64)}


def config_from_checkpoint(shapes: dict, source: str) -> ElectraConfig:
    try:
        vocab, embedding = shapes["electra/embeddings/word_embeddings"]
    except KeyError:
        raise ValueError(
            f"{source}: no 'electra/embeddings/word_embeddings'; not an ELECTRA checkpoint"
        ) from None
    disc = _tower_sizes(shapes, "electra")
    gen = _tower_sizes(shapes, "generator")
    if disc is None and gen is None:
        raise ValueError(f"{source}: no encoder layers under electra/ or generator/")
    main = disc or gen
    fields = dict(
        vocab_size=vocab,
        embedding_size=embedding,
        hidden_size=main["hidden"],
        num_layers=main["layers"],
        num_heads=main["heads"],
        intermediate_size=main["inner"],
        hidden_act="gelu",
        max_position_embeddings=shapes["electra/embeddings/position_embeddings"][0],
        type_vocab_size=shapes["electra/embeddings/token_type_embeddings"][0],
    )
    if gen is not None:
        fields.update(
            generator_hidden_size=gen["hidden"],
            generator_num_layers=gen["layers"],
            generator_num_heads=gen["heads"],
            generator_intermediate_size=gen["inner"],
        )
    return ElectraConfig(**fields)


def load(checkpoint: str, tower: str = "both"):
    """Builds our model(s) from a TF1 checkpoint (a path prefix or directory).

    Returns an ElectraPretrainer ("both"), ElectraDiscriminator or
    ElectraGenerator, with every variable loaded (else ValueError naming the
    first missing, mis-shaped or left-over variable).
    """
    if tower not in TOWERS:
        raise ValueError(f"--tower must be one of {TOWERS}, got {tower!r}")
    try:
        reader = tf.train.load_checkpoint(checkpoint)
    except (tf.errors.NotFoundError, ValueError) as e:
        raise ValueError(f"{checkpoint}: cannot read a TF checkpoint there: {e}") from e
    shapes = reader.get_variable_to_shape_map()
    config = config_from_checkpoint(shapes, checkpoint)
    model, entries = weight_map.build("pretrainer" if tower == "both" else tower, config)
    wanted = {e.name for e in entries}
    if tower == "both":
        leftover = sorted(
            k for k in shapes if _OURS.match(k) and not _IGNORED.search(k) and k not in wanted
        )
        if leftover:
            raise ValueError(f"{checkpoint}: variable {leftover[0]!r} has no place in the model")
    weights = {name: reader.get_tensor(name) for name in wanted if name in shapes}
    weight_map.assign(entries, weights, checkpoint)
    return model
