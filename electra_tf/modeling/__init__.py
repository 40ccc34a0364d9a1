"""Keras 3 layers and models for ELECTRA."""

from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.classification_head import ClassificationHead
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.generator import ElectraGenerator
from electra_tf.modeling.mlm_pretrainer import MlmPretrainer
from electra_tf.modeling.pretrainer import ElectraPretrainer
from electra_tf.modeling.span_head import SpanHead
from electra_tf.modeling.tagging_head import TaggingHead
from electra_tf.modeling.task_model import ElectraTaskModel

__all__ = [
    "ClassificationHead",
    "ElectraBackbone",
    "ElectraDiscriminator",
    "ElectraEmbeddings",
    "ElectraGenerator",
    "ElectraPretrainer",
    "ElectraTaskModel",
    "MlmPretrainer",
    "SpanHead",
    "TaggingHead",
]
