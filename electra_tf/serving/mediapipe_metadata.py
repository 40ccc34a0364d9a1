"""MediaPipe Tasks metadata for our TFLite files, written with MediaPipe's own
metadata writers: a text classifier (`TextClassifier`) or a text embedder
(`TextEmbedder`) that tokenizes raw text on the device with the model's
WordPiece vocab.

The `mediapipe` wheels since 0.10.31 ship the Tasks runtime as a C library and
no longer include the pybind11 modules (google-ai-edge/mediapipe#6192,
#6232), among them `_pywrap_metadata_version`, which the metadata writer
imports to stamp the minimum metadata-parser version. `_install_version_shim`
provides that one function, computed in Python with the same rules as
MediaPipe's `metadata_version.cc` (each schema member added after 1.0.0
raises the minimum to the version that introduced it), when the module is
missing.
"""

from __future__ import annotations

import gc
import sys
import types

from electra_tf.compat import release_metadata_writer

# Inputs of a MediaPipe BERT text model, in the order the metadata declares them.
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")

# Schema members added after 1.0.0 and the parser version that introduced them
# (mediapipe/tasks/cc/metadata/metadata_version.cc).
_VOCABULARY_FILE = (1, 0, 1)
_PROCESS_UNITS = (1, 1, 0)
_BERT_OR_SENTENCEPIECE = (1, 1, 0)
_TENSOR_GROUPS = (1, 2, 0)
_REGEX_TOKENIZER = (1, 2, 1)
_AUDIO_PROPERTIES = (1, 3, 0)
_SCANN_INDEX_FILE = (1, 4, 0)
_FILE_VERSION = (1, 4, 1)
_CUSTOM_METADATA = (1, 5, 0)


def minimum_parser_version(buffer: bytes) -> str:
    """The lowest metadata-parser version that can read this metadata flatbuffer."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    versions = [(1, 0, 0)]

    def files(items):
        for f in items or []:
            if f.type == schema.AssociatedFileType.VOCABULARY:
                versions.append(_VOCABULARY_FILE)
            if f.type == schema.AssociatedFileType.SCANN_INDEX_FILE:
                versions.append(_SCANN_INDEX_FILE)
            if f.version is not None:
                versions.append(_FILE_VERSION)

    def units(items):
        options = schema.ProcessUnitOptions
        for unit in items or []:
            if unit.optionsType in (
                options.BertTokenizerOptions,
                options.SentencePieceTokenizerOptions,
            ):
                versions.append(_BERT_OR_SENTENCEPIECE)
            if unit.optionsType == options.RegexTokenizerOptions:
                versions.append(_REGEX_TOKENIZER)

    def tensors(items):
        for tensor in items or []:
            files(tensor.associatedFiles)
            units(tensor.processUnits)
            content = tensor.content
            if content is not None and (
                content.contentPropertiesType == schema.ContentProperties.AudioProperties
            ):
                versions.append(_AUDIO_PROPERTIES)

    metadata = schema.ModelMetadataT.InitFromPackedBuf(bytes(buffer), 0)
    for subgraph in metadata.subgraphMetadata or []:
        tensors(subgraph.inputTensorMetadata)
        tensors(subgraph.outputTensorMetadata)
        files(subgraph.associatedFiles)
        for present in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if present is not None:
                versions.append(_PROCESS_UNITS)
                units(present)
        if subgraph.inputTensorGroups is not None or subgraph.outputTensorGroups is not None:
            versions.append(_TENSOR_GROUPS)
        if subgraph.customMetadata is not None:
            versions.append(_CUSTOM_METADATA)
    files(metadata.associatedFiles)
    return ".".join(str(v) for v in max(versions))


def _install_version_shim() -> None:
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        __import__(name)
        return
    except ImportError:
        pass
    parents = ("mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata", name.rsplit(".", 1)[0])
    for parent in parents:
        sys.modules.setdefault(parent, types.ModuleType(parent))
    shim = types.ModuleType(name)
    shim.GetMinimumMetadataParserVersion = minimum_parser_version
    sys.modules[name] = shim


def _writers():
    _install_version_shim()
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, text_classifier

    return metadata_writer, text_classifier


def _tensor_names(model: bytes) -> list[str]:
    """The model's input tensor names in `INPUT_NAMES` order (the converter
    names them `serving_default_<argument>:0`)."""
    from mediapipe.tasks.python.metadata.metadata_writers import writer_utils

    names = writer_utils.get_input_tensor_names(bytearray(model))
    ordered = []
    for wanted in INPUT_NAMES:
        found = [n for n in names if n == wanted or n.startswith(f"serving_default_{wanted}:")]
        if len(found) != 1:
            raise ValueError(f"the TFLite model has no single input {wanted!r}: {names}")
        ordered.append(found[0])
    return ordered


def classifier_metadata(model: bytes, vocab_path: str, labels: list[str]) -> bytes:
    """`model` with TextClassifier metadata: BERT tokenizer (vocab), label names.

    The model's inputs must be named `INPUT_NAMES` and its one output must be
    the class probabilities [1, len(labels)].
    """
    metadata_writer, text_classifier = _writers()
    names = _tensor_names(model)
    return _populate(
        lambda: text_classifier.MetadataWriter.create_for_bert_model(
            bytearray(model),
            metadata_writer.BertTokenizer(vocab_path),
            metadata_writer.Labels().add(list(labels)),
            *names,
        )
    )


def embedder_metadata(model: bytes, vocab_path: str) -> bytes:
    """`model` with TextEmbedder metadata: BERT tokenizer (vocab), one embedding output."""
    metadata_writer, _ = _writers()
    names = _tensor_names(model)

    def make():
        writer = metadata_writer.MetadataWriter.create(bytearray(model))
        writer.add_general_info(
            "electra_tf text embedder", "ELECTRA encoder, pooled, L2-normalised"
        )
        writer.add_bert_text_input(metadata_writer.BertTokenizer(vocab_path), *names)
        writer.add_feature_output(name="embedding", description="L2-normalised text embedding")
        return writer

    return _populate(make)


def _populate(make) -> bytes:
    """The model bytes the writer `make()` returns populates, its temporary
    files removed and the writer freed while the interpreter is whole."""
    writer = make()
    try:
        populated, _ = writer.populate()
    finally:
        release_metadata_writer(writer)
        del writer
        gc.collect()  # the writer is in a reference cycle
    return bytes(populated)
