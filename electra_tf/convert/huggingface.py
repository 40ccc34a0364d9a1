"""Hugging Face ELECTRA checkpoints (config.json + model.safetensors) <-> ours.

Covers `ElectraForPreTraining` (discriminator), `ElectraForMaskedLM`
(generator) and `ElectraModel` (encoder only). Reads safetensors with its
numpy API, so no torch is needed; `pytorch_model.bin` needs torch.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from electra_tf.config import ElectraConfig
from electra_tf.convert import weight_map
from electra_tf.io_utils import atomic_write_json
from electra_tf.modeling import ElectraDiscriminator, ElectraGenerator, ElectraTaskModel

PRETRAINING = "ElectraForPreTraining"
MASKED_LM = "ElectraForMaskedLM"
ENCODER = "ElectraModel"
CLASSIFIER = "ElectraForSequenceClassification"

_ACT_FROM_HF = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
}
_ACT_TO_HF = {"gelu": "gelu", "gelu_approximate": "gelu_new", "relu": "relu"}
# Buffers and tied copies that carry no weights of their own.
_IGNORED = re.compile(r"(^|\.)position_ids$|^generator_lm_head\.weight$")


def hf_name(canonical: str, architecture: str) -> tuple[str, bool]:
    """The Hugging Face key of a canonical name, and whether it is transposed."""
    scope, rest = canonical.split("/", 1)
    transpose = canonical.endswith("/kernel")
    if scope in ("electra", "generator"):
        prefix = "" if architecture == ENCODER else "electra."
        rest = re.sub(r"layer_(\d+)", r"layer.\1", rest)
        tables = ("word_embeddings", "position_embeddings", "token_type_embeddings")
        if rest.startswith("embeddings/") and rest.split("/")[1] in tables:
            rest += "/weight"
    elif scope == "discriminator_predictions":
        prefix = "discriminator_predictions."
        rest = rest.replace("dense_1/", "dense_prediction/")
    elif scope == "classifier":
        prefix = "classifier."
    elif scope == "generator_predictions":
        if rest == "output_bias":
            return "generator_lm_head.bias", False
        prefix = "generator_predictions."
    else:
        raise ValueError(f"no Hugging Face name for {canonical!r}")
    rest = rest.replace("/kernel", "/weight").replace("/gamma", "/weight").replace("/beta", "/bias")
    return prefix + rest.replace("/", "."), transpose


def config_from_hf(hf: dict, architecture: str) -> ElectraConfig:
    """Our config from a Hugging Face config.json (a generator's sizes go to generator_*)."""
    act = hf.get("hidden_act", "gelu")
    if act not in _ACT_FROM_HF:
        raise ValueError(f"config.json: hidden_act={act!r} is not supported")
    sizes = dict(
        hidden_size=hf["hidden_size"],
        num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"],
        intermediate_size=hf["intermediate_size"],
    )
    common = dict(
        vocab_size=hf["vocab_size"],
        embedding_size=hf.get("embedding_size", hf["hidden_size"]),
        hidden_act=_ACT_FROM_HF[act],
        dropout=hf.get("hidden_dropout_prob", 0.1),
        max_position_embeddings=hf.get("max_position_embeddings", 512),
        type_vocab_size=hf.get("type_vocab_size", 2),
        initializer_range=hf.get("initializer_range", 0.02),
        layer_norm_epsilon=hf.get("layer_norm_eps", 1e-12),
    )
    generator = dict(
        generator_hidden_size=sizes["hidden_size"],
        generator_num_layers=sizes["num_layers"],
        generator_num_heads=sizes["num_heads"],
        generator_intermediate_size=sizes["intermediate_size"],
    )
    # A generator checkpoint describes only the generator: give the (unbuilt)
    # discriminator the same sizes so the config stays valid.
    return ElectraConfig(**common, **sizes, **(generator if architecture == MASKED_LM else {}))


def config_to_hf(config: ElectraConfig, architecture: str) -> dict:
    gen = architecture == MASKED_LM
    return {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": config.vocab_size,
        "embedding_size": config.embedding_size,
        "hidden_size": config.generator_hidden_size if gen else config.hidden_size,
        "num_hidden_layers": config.generator_num_layers if gen else config.num_layers,
        "num_attention_heads": config.generator_num_heads if gen else config.num_heads,
        "intermediate_size": config.generator_intermediate_size
        if gen
        else config.intermediate_size,
        "hidden_act": _ACT_TO_HF[config.hidden_act],
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.dropout,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.layer_norm_epsilon,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "summary_type": "first",
    }


def read_weights(directory: str) -> dict[str, np.ndarray]:
    st = os.path.join(directory, "model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file

        return load_file(st)
    pt = os.path.join(directory, "pytorch_model.bin")
    if os.path.exists(pt):
        try:
            import torch
        except ImportError as e:
            raise ValueError(
                f"{pt}: reading .bin checkpoints needs torch; convert it to safetensors"
            ) from e
        state = torch.load(pt, map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}
    raise ValueError(f"{directory}: no model.safetensors or pytorch_model.bin")


def detect_architecture(config_json: dict, weights: dict[str, np.ndarray]) -> str:
    for arch in config_json.get("architectures") or []:
        if arch in (PRETRAINING, MASKED_LM, ENCODER):
            return arch
    if any(k.startswith("discriminator_predictions.") for k in weights):
        return PRETRAINING
    if any(k.startswith("generator_predictions.") for k in weights):
        return MASKED_LM
    return ENCODER


def load(directory: str):
    """Reads a Hugging Face ELECTRA directory into one of our models.

    Returns (model, architecture): an ElectraDiscriminator for
    ElectraForPreTraining, an ElectraGenerator for ElectraForMaskedLM, an
    ElectraBackbone for ElectraModel. Every weight must be used and every
    variable filled, or ValueError names the first offender.
    """
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"{directory}: no config.json (is it a Hugging Face model directory?)")
    with open(path, encoding="utf-8") as f:
        hf_config = json.load(f)
    if hf_config.get("model_type", "electra") != "electra":
        raise ValueError(
            f"{path}: model_type={hf_config.get('model_type')!r}, not an ELECTRA model"
        )
    weights = read_weights(directory)
    arch = detect_architecture(hf_config, weights)
    config = config_from_hf(hf_config, arch)
    kind = {PRETRAINING: "discriminator", MASKED_LM: "generator", ENCODER: "encoder"}[arch]
    model, entries = weight_map.build(kind, config)
    canonical = {}
    used = set()
    for entry in entries:
        key, transpose = hf_name(entry.name, arch)
        if key in weights:
            canonical[entry.name] = weights[key].T if transpose else weights[key]
            used.add(key)
    unused = sorted(k for k in weights if k not in used and not _IGNORED.search(k))
    if unused:
        raise ValueError(
            f"{directory}: weight {unused[0]!r} (and {len(unused) - 1} more) has no place in an "
            f"{arch} of this config.json; is the config right for these weights?"
        )
    weight_map.assign(entries, canonical, directory)
    return model, arch


def save(model, directory: str) -> str:
    """Writes one of our towers, or a fine-tuned classifier (ElectraTaskModel of kind
    classification/regression -> ElectraForSequenceClassification), as a Hugging
    Face model (config.json + model.safetensors)."""
    from safetensors.numpy import save_file

    labels = None
    if isinstance(model, ElectraDiscriminator):
        arch, entries = PRETRAINING, weight_map.discriminator_entries(model)
    elif isinstance(model, ElectraTaskModel) and model.task.hf_problem_type:
        if model.head_type != "hf":
            raise ValueError(
                f"this {model.kind} model has the {model.head_type!r} head; Hugging Face's "
                "ElectraForSequenceClassification has the 'hf' one (fine-tune with "
                "--task_head=hf to convert the result)"
            )
        arch, entries = CLASSIFIER, weight_map.classifier_entries(model)
        labels = model.num_labels
    elif isinstance(model, ElectraGenerator):
        arch, entries = MASKED_LM, weight_map.generator_entries(model)
    else:
        raise ValueError(f"cannot export {type(model).__name__} to Hugging Face")
    tensors = {}
    for name, value in weight_map.export(entries).items():
        key, transpose = hf_name(name, arch)
        tensors[key] = np.ascontiguousarray(value.T if transpose else value, dtype=np.float32)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".model.safetensors.tmp-{os.getpid()}")
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(directory, "model.safetensors"))
    hf_config = config_to_hf(model.config, arch)
    if labels is not None:
        hf_config["num_labels"] = labels
        hf_config["problem_type"] = model.task.hf_problem_type
    atomic_write_json(os.path.join(directory, "config.json"), hf_config)
    return arch
