"""Keras 3 layers and models for ELECTRA."""

from electra_tf.modeling.backbone import ElectraBackbone
from electra_tf.modeling.discriminator import ElectraDiscriminator
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.generator import ElectraGenerator
from electra_tf.modeling.pretrainer import ElectraPretrainer

__all__ = [
    "ElectraBackbone",
    "ElectraDiscriminator",
    "ElectraEmbeddings",
    "ElectraGenerator",
    "ElectraPretrainer",
]
