"""The fine-tuning job: its input pipeline (`data`), the job that trains a
task model on the engine (`job`), the GLUE suite runner (`glue_suite`), and
the wiring from command-line flags to each (`command`, `glue_command`)."""
