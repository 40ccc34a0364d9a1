"""electra-tf: pre-train, fine-tune and ship ELECTRA text encoders with TF 2 + Keras 3."""

from setuptools import find_packages, setup

# One pinned set that installs together on Python 3.11 (docs/pitfalls.md):
# tf-models-official 2.20 requires tensorflow~=2.20 and tensorflow-text~=2.20.
INSTALL_REQUIRES = [
    "tensorflow==2.20.0",
    "tensorflow-text==2.20.1",
    "keras==3.15.1",
    "keras-hub==0.32.0",
    "tf-models-official==2.20.0",
    "absl-py>=1.4,<3",
    "numpy>=1.26,<3",
    "safetensors>=0.4",  # Hugging Face weights, read and written with numpy
    "google-crc32c>=1.5,<2",  # TFRecord checksums: data prep writes shards without TF
    "ai-edge-litert",  # the TFLite interpreter (tf.lite.Interpreter is deprecated)
    # tensorflow-hub (imported by Model Garden's nlp tasks) needs pkg_resources,
    # which fresh venvs lack and setuptools>=81 no longer ships.
    "setuptools>=68,<81",
]

# Apache Beam for data prep past one machine (data_prep/beam/). Beam 2.77 needs
# protobuf < 7 and pyarrow < 26; TensorFlow 2.20 and every other dependency
# here accept protobuf 6.33 (the newest gencode they ship is 6.33.5).
BEAM = ["apache-beam==2.77.0", "protobuf>=6.33.5,<7", "pyarrow>=15,<26"]

# benchmarks/learning.py's plot and benchmarks/layer_probe.py's probes (the
# toy study in the tests runs both).
BENCH_ANALYSIS = ["matplotlib>=3.8", "scikit-learn>=1.5,<2"]

EXTRAS = {
    "beam": BEAM,
    # transformers + torch (the CPU wheel, 2.13.0) for the Hugging Face parity tests.
    "test": [
        *BEAM,
        "pytest==9.2.0",
        "ruff==0.17.6",
        "transformers>=4.46,<6",
        "torch==2.13.0",
        "safetensors",
        # MediaPipe Tasks' own runtime, to test the edge files as a phone app loads them.
        "mediapipe==1.2.3",
        # Property-based tests of the text paths (tokenizers, data prep, packing).
        "hypothesis==6.170.17",
        *BENCH_ANALYSIS,
    ],
    # Peers for benchmarks/, and what the learning study's plots and probes use.
    "bench": ["transformers>=4.46,<6", "torch==2.13.0", "safetensors", "psutil", *BENCH_ANALYSIS],
}

setup(
    name="electra-tf",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["electra_tf", "electra_tf.*", "data_prep", "data_prep.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "electra-build-vocab=data_prep.build_vocab:run",
            "electra-build-pretraining-data=data_prep.build_pretraining_data:run",
            "electra-beam-pretraining-data=data_prep.beam.pretraining_data:main",
            "electra-beam-vocab=data_prep.beam.vocab:main",
            "electra-builtin-corpus=data_prep.builtin_corpus:run",
            "electra-pretrain=electra_tf.pretrain:run",
            "electra-convert=electra_tf.convert.__main__:run",
            "electra-build-finetuning-data=data_prep.build_finetuning_data:run",
            "electra-finetune=electra_tf.finetune:run",
            "electra-glue=electra_tf.glue:run",
            "electra-export=electra_tf.export:run",
            "electra-tflite=electra_tf.tflite:run",
            "electra-fill-mask=electra_tf.fill_mask:run",
        ]
    },
)
