"""An ELECTRA encoder with a fine-tuning task's head, trained by the engine.

The task kind (`electra_tf.tasks`) is passed in as an object: this model
calls its head, loss and count methods, and never looks a kind up by name,
so the model library does not depend on the task package above it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.step_model import StepModel

LOSS_REDUCTIONS = ("sum", "mean")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraTaskModel(StepModel):
    """The discriminator's encoder (named "electra", so pre-trained weights
    load by name) under the head of a task kind.

    The kind's `Task` (`electra_tf.tasks.get_task(kind)`) supplies the head,
    the loss and what it is averaged over; the train/test steps are the engine's
    `StepModel`'s, so fine-tuning runs under any strategy, with mixed
    precision, XLA and gradient accumulation, as pre-training does. Batches
    are `(features, labels)` pairs.

    Args:
        config: The encoder's `ElectraConfig`.
        task: The task kind's object, `electra_tf.tasks.get_task(kind)` for
            "classification", "regression", "span" or "tagging". It is
            serialised with the model (the task classes are registered Keras
            objects).
        num_labels: Classes or tags (ignored for regression and span).
        with_null: Span only: add SQuAD 2.0's no-answer classifier.
        head: The head layout, one of the task's `heads` (None: its default).
        loss_reduction: "sum" (the reference's: the loss is the mean over what
            the task counts times the number of examples in the global batch,
            i.e. summed over examples, before the gradient clip) or "mean".
            Adam is nearly invariant to the loss scale; the 1.0 clip is not,
            so this changes how often updates are clipped.
        seed, grad_accum_steps, clip_norm, jit_compile: See `StepModel`.
        freeze_encoder: Train the head alone: the encoder's weights are not
            trainable and it runs in inference mode (no dropout), so the head
            reads fixed features (a linear probe with the reference head).

    Call returns a dict: `logits` ([batch, labels]; [batch, length, labels]
    for tagging; [batch, 1] for regression) or, for span,
    `start_logits`/`end_logits` (+ `null_logit`).

    Example:
        >>> import numpy as np
        >>> from electra_tf.tasks import get_task
        >>> config = ElectraConfig.from_preset("tiny", vocab_size=100)
        >>> model = ElectraTaskModel(config, get_task("classification"), num_labels=3)
        >>> ids = np.ones((2, 8), "int32")
        >>> out = model({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
        >>> tuple(out["logits"].shape)
        (2, 3)
    """

    def __init__(
        self,
        config: ElectraConfig,
        task,
        num_labels: int = 2,
        with_null: bool = False,
        head: str | None = None,
        loss_reduction: str = "sum",
        seed: int = 0,
        grad_accum_steps: int = 1,
        clip_norm: float = 1.0,
        jit_compile: bool = False,
        freeze_encoder: bool = False,
        **kwargs,
    ):
        if isinstance(task, dict):  # from get_config
            task = keras.saving.deserialize_keras_object(task)
        kind = task.kind
        kwargs.setdefault("name", f"electra_{kind}")
        super().__init__(
            seed=seed,
            grad_accum_steps=grad_accum_steps,
            clip_norm=clip_norm,
            jit_compile=jit_compile,
            **kwargs,
        )
        self.config = config
        self.kind = kind
        self.task = task
        self.num_labels = task.num_outputs(num_labels)
        self.with_null = with_null
        self.head_type = task.resolve_head(head)
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}")
        self.loss_reduction = loss_reduction
        self.backbone = ElectraBackbone(
            config, "discriminator", dtype=self.dtype_policy, name="electra"
        )
        self.head = task.build_head(
            config, num_labels, with_null, self.dtype_policy, self.head_type
        )
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.backbone.trainable = False
        self._task_loss = keras.metrics.Mean(name="loss")

    def build(self, input_shape=None):
        self.backbone.build()
        self.head.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        return self._outputs(inputs, None, training)

    def _outputs(self, features, labels, training):
        # A frozen encoder gives fixed features: no dropout in it either.
        sequence = self.backbone(features, training=False if self.freeze_encoder else training)
        return self.task.head_outputs(self.head, sequence, features, labels, training)

    # --- the engine's step ----------------------------------------------------------

    def _normalizers(self, data) -> dict:
        _, labels = data
        examples = tf.cast(tf.shape(tf.nest.flatten(labels)[0])[0], tf.float32)
        return {"count": self.task.count(labels), "examples": examples}

    def _forward(self, data, norms, seed, training, row_offset=0, step=None):
        features, labels = data
        outputs = self._outputs(features, labels, training)
        loss_sum = self.task.loss_sum(labels, outputs)
        loss = tf.math.divide_no_nan(loss_sum, norms["count"])
        if self.loss_reduction == "sum":
            loss *= norms["examples"]
        return {
            "loss": loss,
            "loss_sum": loss_sum,
            "count": self.task.count(labels),
        }

    def _update_metrics(self, out) -> None:
        mean = tf.math.divide_no_nan(out["loss_sum"], out["count"])
        self._task_loss.update_state(mean, sample_weight=out["count"])

    def _metric_list(self):
        return [self._task_loss]

    def _total_loss(self, logs):
        return logs["loss"]

    def get_config(self):
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "task": keras.saving.serialize_keras_object(self.task),
            "num_labels": self.num_labels,
            "with_null": self.with_null,
            "head": self.head_type,
            "loss_reduction": self.loss_reduction,
            "freeze_encoder": self.freeze_encoder,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
