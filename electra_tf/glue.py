"""`python -m electra_tf.glue`: the GLUE suite command line (`electra_tf.finetuning.glue_cli`)."""

from electra_tf.finetuning import glue_cli

__doc__ = glue_cli.__doc__  # absl's --help prints the __main__ module's docstring
run = glue_cli.run

if __name__ == "__main__":
    run()
