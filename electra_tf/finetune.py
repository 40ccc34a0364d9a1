"""`python -m electra_tf.finetune`: the fine-tuning command line (`electra_tf.finetuning.cli`)."""

from electra_tf.finetuning import cli

__doc__ = cli.__doc__  # absl's --help prints the __main__ module's docstring
run = cli.run

if __name__ == "__main__":
    run()
