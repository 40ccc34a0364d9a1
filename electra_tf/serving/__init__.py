"""Shipping a model: SavedModel export for TF Serving (`saved_model`), TFLite
(`tflite_export`), MediaPipe text classifier/embedder files (`mediapipe`), and
how edge files are compared with their SavedModel (`comparison`).

`load(path)` loads an export in Python, its tokenizer ops registered.
"""

from electra_tf.serving.saved_model import load

__all__ = ["load"]
