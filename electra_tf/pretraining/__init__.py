"""The pre-training job: its input pipeline (`data`), the job that trains an
objective from `electra_tf.modeling` on the engine (`job`), and the wiring
from command-line flags to the job (`command`)."""
