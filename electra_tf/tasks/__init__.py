"""The fine-tuning task kinds, one class per file, found through `get_task(kind)`."""

from electra_tf.tasks.base import EvalContext, Task, get_task, kinds, register
from electra_tf.tasks.classification import ClassificationTask
from electra_tf.tasks.regression import RegressionTask
from electra_tf.tasks.span import SpanTask
from electra_tf.tasks.tagging import TaggingTask

__all__ = [
    "ClassificationTask",
    "EvalContext",
    "RegressionTask",
    "SpanTask",
    "TaggingTask",
    "Task",
    "get_task",
    "kinds",
    "register",
]
