"""Model sizes for ELECTRA: `ElectraConfig`, its presets and its JSON round-trip.

The config describes the architecture only (both towers). Training recipes
(learning rate, batch, mask rate) live in the flagfiles under `configs/`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from electra_tf.io_utils import atomic_write_text

# Sizes from the ELECTRA paper (Table 6) and google-research/electra.
# `generator_fraction` is the generator's width as a fraction of the
# discriminator's; its depth follows `generator_layers_fraction`.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        intermediate_size=256,
        embedding_size=32,
        generator_fraction=0.5,
        max_position_embeddings=128,
    ),
    "small": dict(
        hidden_size=256,
        num_layers=12,
        num_heads=4,
        intermediate_size=1024,
        embedding_size=128,
        generator_fraction=0.25,
    ),
    "base": dict(
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        intermediate_size=3072,
        embedding_size=768,
        generator_fraction=1.0 / 3.0,
    ),
    "large": dict(
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        intermediate_size=4096,
        embedding_size=1024,
        generator_fraction=0.25,
    ),
}

HIDDEN_ACTIVATIONS = ("gelu", "gelu_approximate", "relu")


@dataclasses.dataclass
class ElectraConfig:
    """Architecture of an ELECTRA generator + discriminator pair.

    The discriminator is a BERT-style post-LayerNorm Transformer encoder. The
    generator has the same structure with a fraction of the width; unless
    given explicitly its sizes are derived as google-research/electra does:
    `hidden = round(hidden_size * generator_fraction)`, `intermediate =
    4 * hidden`, `heads = max(1, hidden // 64)`, `layers = round(num_layers *
    generator_layers_fraction)`. Both towers share the token, position and
    segment embeddings (size `embedding_size`), each projecting to its own
    hidden size when they differ.

    Args:
        vocab_size: Number of WordPiece ids.
        hidden_size: Discriminator width.
        num_layers: Discriminator depth.
        num_heads: Discriminator attention heads.
        intermediate_size: Discriminator feed-forward width.
        embedding_size: Width of the shared embeddings.
        hidden_act: "gelu" (the exact erf form, as google-research/electra
            and Hugging Face's "gelu"), "gelu_approximate" (the tanh
            approximation, Hugging Face's "gelu_new") or "relu".
        dropout: Dropout on embeddings, attention probabilities and hidden
            states (one rate, as keras-hub's TransformerEncoder and the
            released models use).
        max_position_embeddings: Length of the position table.
        type_vocab_size: Number of segment ids.
        initializer_range: Stddev of the truncated-normal initializer.
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in the released models).
        generator_fraction: Generator width as a fraction of `hidden_size`.
        generator_layers_fraction: Generator depth as a fraction of `num_layers`.
        generator_hidden_size, generator_num_layers, generator_num_heads,
        generator_intermediate_size: Explicit generator sizes (override the
            fractions; needed for released checkpoints such as the "++" models).

    Example:
        >>> config = ElectraConfig.from_preset("small", vocab_size=30522)
        >>> config.generator_hidden_size
        64
        >>> ElectraConfig.from_json(config.to_json()) == config
        True
    """

    vocab_size: int = 30522
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: int = 1024
    embedding_size: int = 128
    hidden_act: str = "gelu"
    dropout: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_epsilon: float = 1e-12
    generator_fraction: float = 0.25
    generator_layers_fraction: float = 1.0
    generator_hidden_size: int | None = None
    generator_num_layers: int | None = None
    generator_num_heads: int | None = None
    generator_intermediate_size: int | None = None

    def __post_init__(self) -> None:
        if self.generator_hidden_size is None:
            self.generator_hidden_size = int(round(self.hidden_size * self.generator_fraction))
        if self.generator_num_layers is None:
            self.generator_num_layers = int(round(self.num_layers * self.generator_layers_fraction))
        if self.generator_num_heads is None:
            self.generator_num_heads = max(1, self.generator_hidden_size // 64)
        if self.generator_intermediate_size is None:
            self.generator_intermediate_size = 4 * self.generator_hidden_size
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the first inconsistent field."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "embedding_size",
            "max_position_embeddings",
            "type_vocab_size",
            "generator_hidden_size",
            "generator_num_layers",
            "generator_num_heads",
            "generator_intermediate_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ElectraConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"ElectraConfig.hidden_size={self.hidden_size} is not divisible by "
                f"num_heads={self.num_heads}"
            )
        if self.generator_hidden_size % self.generator_num_heads:
            raise ValueError(
                f"ElectraConfig.generator_hidden_size={self.generator_hidden_size} is not "
                f"divisible by generator_num_heads={self.generator_num_heads}"
            )
        if self.hidden_act not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"ElectraConfig.hidden_act={self.hidden_act!r}; expected one of {HIDDEN_ACTIVATIONS}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ElectraConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ElectraConfig:
        """Builds a preset ("tiny", "small", "base", "large") with field overrides."""
        if name not in PRESETS:
            raise ValueError(f"Unknown model size {name!r}; expected one of {sorted(PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"Unknown ElectraConfig field(s): {', '.join(unknown)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ElectraConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"Unknown ElectraConfig field(s): {', '.join(unknown)}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ElectraConfig:
        return cls.from_dict(json.loads(text))

    def save(self, path: str) -> None:
        """Writes the config as JSON atomically (temp file + rename)."""
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str) -> ElectraConfig:
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_json(f.read())
            except (json.JSONDecodeError, TypeError, ValueError) as e:
                raise ValueError(f"{path}: not a valid ElectraConfig JSON: {e}") from e

    @classmethod
    def load_from_dir(cls, directory: str) -> ElectraConfig:
        path = os.path.join(directory, "electra_config.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"No electra_config.json in {directory}")
        return cls.load(path)
