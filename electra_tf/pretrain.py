"""`python -m electra_tf.pretrain`: the pre-training command line (`electra_tf.pretraining.cli`)."""

from electra_tf.pretraining import cli

__doc__ = cli.__doc__  # absl's --help prints the __main__ module's docstring
run = cli.run

if __name__ == "__main__":
    run()
