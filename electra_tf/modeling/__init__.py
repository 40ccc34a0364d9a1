"""Keras 3 layers and models of the ELECTRA encoder: embeddings, Transformer
layers, the backbone, the two towers and the fine-tuning heads."""

from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.classification_head import ClassificationHead
from electra_tf.modeling.cls_head import ClsHead
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.generator import ElectraGenerator
from electra_tf.modeling.span_head import SpanHead
from electra_tf.modeling.tagging_head import TaggingHead

__all__ = [
    "ClassificationHead",
    "ClsHead",
    "ElectraBackbone",
    "ElectraDiscriminator",
    "ElectraEmbeddings",
    "ElectraGenerator",
    "SpanHead",
    "TaggingHead",
]
