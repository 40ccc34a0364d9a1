"""Keras 3 layers and models of ELECTRA: embeddings, Transformer layers, the
backbone, the two towers, the fine-tuning heads, the pre-training objectives
(ELECTRA and MLM), the task model, and the step-model base they share."""

from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.electra_pretrainer import ElectraPretrainer
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.generator import ElectraGenerator
from electra_tf.modeling.hf_classification_head import HfClassificationHead
from electra_tf.modeling.mlm_pretrainer import MlmPretrainer
from electra_tf.modeling.reference_classification_head import ReferenceClassificationHead
from electra_tf.modeling.span_head import SpanHead
from electra_tf.modeling.step_model import StepModel
from electra_tf.modeling.tagging_head import TaggingHead
from electra_tf.modeling.task_model import ElectraTaskModel

__all__ = [
    "HfClassificationHead",
    "ReferenceClassificationHead",
    "ElectraBackbone",
    "ElectraDiscriminator",
    "ElectraEmbeddings",
    "ElectraGenerator",
    "ElectraPretrainer",
    "ElectraTaskModel",
    "MlmPretrainer",
    "SpanHead",
    "StepModel",
    "TaggingHead",
]
