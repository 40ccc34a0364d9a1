"""Data prep on Apache Beam: the same steps as the local jobs, on any runner.

`pretraining_data` builds the same TFRecord shards as
`data_prep.build_pretraining_data`; `vocab` learns the same vocabulary as
`data_prep.build_vocab`. Each DoFn calls the functions the local job uses, so
there is one implementation of reading, tokenizing, packing and masking.
Flags are the local job's; every other argument (`--runner`,
`--direct_num_workers`, `--project`, `--temp_location`, ...) goes to Beam's
`PipelineOptions` unchanged.
"""

from __future__ import annotations

import logging
import re

from data_prep.text_source import InputError

_OUR_ERROR = re.compile(r"(?:InputError|ValueError): (.+?)(?:\n|$)")
_STEP_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]")


def pipeline_options(args: list[str]):
    """Beam's PipelineOptions from `args`; an argument that neither this job nor
    Beam knows is an error (Beam alone would only log that it dropped it, so a
    mistyped --num_shards would silently build with the default)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(args)
    beam_log = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_log.level
    beam_log.setLevel(logging.ERROR)
    try:
        known = set(options.get_all_options())
        unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - known)
    finally:
        beam_log.setLevel(level)
    if unknown:
        raise ValueError(
            f"unknown flag(s) {', '.join('--' + name for name in unknown)}: not a flag of this "
            "job (--helpfull lists them) nor an Apache Beam pipeline option"
        )
    return options


def run_pipeline(pipeline):
    """Runs a pipeline to completion; a worker's InputError comes back as one.

    Runners wrap an exception raised in a DoFn in their own (the DirectRunner's
    multi-process mode as a RuntimeError holding the remote traceback as
    text), so the clear message of a bad input would be lost in a stack trace.
    """
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as e:
        # Runners append the step's name to the message, or re-raise the error
        # as text inside their own exception.
        text = _STEP_SUFFIX.sub("", str(e))
        if isinstance(e, ValueError):
            raise InputError(text.strip()) from e
        found = _OUR_ERROR.search(text)
        if found:
            raise InputError(found.group(1).strip()) from e
        raise
    return result


def counters(result, namespace: str) -> dict[str, int]:
    """The pipeline's committed (else attempted) counters in `namespace`."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        queried = result.metrics().query(MetricsFilter().with_namespace(namespace))
    except Exception:  # some runners do not report metrics
        return {}
    out = {}
    for counter in queried["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        out[counter.key.metric.name] = int(value or 0)
    return out
