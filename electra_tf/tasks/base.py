"""A fine-tuning task kind: its head, loss, metrics and serving outputs, and
the registry that finds it by name.

A new kind is one file in this package: a `Task` subclass decorated with
`@register`. Nothing outside the task classes branches on the kind.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: makes `cls` the task of kind `cls.kind`, and a Keras
    serializable object (so a task model's config round-trips)."""
    if cls.kind in _REGISTRY:
        raise ValueError(f"task kind {cls.kind!r} is registered twice")
    _REGISTRY[cls.kind] = cls
    return keras.saving.register_keras_serializable(package="electra_tf")(cls)


def kinds() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_task(kind: str) -> Task:
    """The task object for `kind`, with an error listing the known kinds."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(kinds())}")
    return _REGISTRY[kind]()


@dataclasses.dataclass
class EvalContext:
    """What scoring an eval split may need beyond outputs and labels."""

    info: dict[str, Any]
    data_dir: str
    split: str
    model_dir: str
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float | None = None  # None: the head's default


class Task(abc.ABC):
    """Base of the task kinds. Subclasses set `kind` and override the methods.

    Class attributes:
        kind: The name in finetune_info.json / task.json.
        always_pair: Inputs are always a text pair (QA: question, passage).
        single_output: The one output of a sentence-level head that TFLite and
            Hugging Face conversion carry (None: not supported there).
        hf_problem_type: Hugging Face's `problem_type` for
            `ElectraForSequenceClassification` (None: no HF equivalent).
        heads: The head layouts this kind offers, the default first.
        legacy_head: The head of a saved task.json that names none (written
            before heads were selectable).
    """

    kind: ClassVar[str] = ""
    head_type: str = "reference"
    heads: ClassVar[tuple[str, ...]] = ("reference",)
    legacy_head: ClassVar[str] = "reference"
    always_pair: ClassVar[bool] = False
    single_output: ClassVar[str | None] = None
    hf_problem_type: ClassVar[str | None] = None

    def get_config(self) -> dict[str, Any]:
        """Nothing to configure: the head layout is the task model's argument."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Task:
        return cls(**config)

    # --- data --------------------------------------------------------------------

    @abc.abstractmethod
    def label_spec(self, length: int) -> dict[str, tf.io.FixedLenFeature]:
        """Parsing spec of the label features in a record of `length` tokens."""

    def num_outputs(self, num_labels: int) -> int:
        return num_labels

    # --- network -------------------------------------------------------------------

    def resolve_head(self, head: str | None) -> str:
        """Sets and returns the head layout: `head`, or the default; an error
        names the choices."""
        if head is None:
            head = self.heads[0]
        if head not in self.heads:
            raise ValueError(
                f"--task_head={head!r} is not a head of {self.kind} tasks; "
                f"choose one of {', '.join(self.heads)}"
            )
        self.head_type = head
        return head

    @abc.abstractmethod
    def build_head(
        self, config, num_labels: int, with_null: bool, dtype, head: str
    ) -> keras.layers.Layer:
        """The head layer of layout `head` (one of `heads`)."""

    def head_outputs(
        self, head, sequence: tf.Tensor, features: dict, labels: dict | None, training
    ) -> dict[str, tf.Tensor]:
        """The model's outputs from the encoder's [batch, length, hidden] states.

        `labels` is given when a loss will be computed (heads that condition
        on the gold answer, like SQuAD's joint head, use it), else None.
        """
        return {"logits": head(sequence, training=training)}

    # --- training -------------------------------------------------------------------

    def count(self, labels: dict[str, tf.Tensor]) -> tf.Tensor:
        """What the loss is averaged over in this batch (examples by default), float."""
        return tf.cast(tf.shape(tf.nest.flatten(labels)[0])[0], tf.float32)

    @abc.abstractmethod
    def loss_sum(self, labels: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor]) -> tf.Tensor:
        """The loss summed over what `count` counts (float32)."""

    # --- evaluation --------------------------------------------------------------------

    @abc.abstractmethod
    def score(
        self, outputs: dict[str, np.ndarray], labels: dict[str, np.ndarray], ctx: EvalContext
    ) -> dict[str, float]:
        """The dev metrics of one eval split from the gathered outputs and labels."""

    # --- serving -------------------------------------------------------------------------

    @abc.abstractmethod
    def serving_outputs(self, raw: dict[str, tf.Tensor], inputs: dict, module) -> dict:
        """Signature outputs from the model's float32 outputs.

        `module` is the `ServingModule` (labels, vocab, special ids, limits).
        """

    def edge_classifier(self, task: dict[str, Any]) -> bool:
        """Whether MediaPipe's TextClassifier can run this model (`task` is its
        task.json): one text in, class scores out."""
        return False

    def text_outputs(self, outputs: dict, passage, module) -> dict:
        """Extra outputs of the text signature (QA: the answer's text)."""
        return outputs
