"""Pre-training: the objectives (ELECTRA's replaced-token detection, BERT's
MLM), their data pipeline and the job that trains them on the engine."""

from electra_tf.pretraining.electra import ElectraPretrainer
from electra_tf.pretraining.mlm import MlmPretrainer

__all__ = ["ElectraPretrainer", "MlmPretrainer"]
