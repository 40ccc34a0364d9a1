"""electra-tf: pre-train, fine-tune and ship ELECTRA text encoders with TensorFlow 2 and Keras 3."""

import os as _os

# TensorFlow's C++ INFO lines (CUDA probing, CPU-feature notices) say nothing
# to a user of this package; set before any submodule imports TensorFlow.
# An explicit TF_CPP_MIN_LOG_LEVEL wins. `electra_tf.console` handles the rest.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
