# Two set-up commands for a fresh machine (see README): `make demo` and `make test`.
# Each creates the virtualenv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out
# TF's C++ start-up chatter (CUDA probing on a CPU machine) hides the useful output.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-fast lint format clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m data_prep.builtin_corpus --output=$(DEMO_DIR)/corpus.txt
	$(PY) -m data_prep.build_vocab --input=$(DEMO_DIR)/corpus.txt --vocab_size=8192 --output=$(DEMO_DIR)/vocab.txt
	$(PY) -m data_prep.build_pretraining_data --input=$(DEMO_DIR)/corpus.txt --vocab=$(DEMO_DIR)/vocab.txt \
	  --output_dir=$(DEMO_DIR)/pretrain_data --max_seq_length=128 --num_shards=8 --num_workers=2 \
	  --pack_documents
	$(PY) -m electra_tf.pretrain --flagfile=configs/demo.flags \
	  --train_data="$(DEMO_DIR)/pretrain_data/pretrain-0000[1-7]-*" --eval_data="$(DEMO_DIR)/pretrain_data/pretrain-00000-*" --model_dir=$(DEMO_DIR)/model

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# The unit tier: no ../shared/data, no long training runs.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not integration"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

# --- Bazel (offline, Debian's bazel-bootstrap) ---------------------------------
SHARED_DATA ?= $(abspath ../shared/data)
BAZEL_ENV = PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
BAZEL_TEST_FLAGS = --test_env=ELECTRA_SHARED_DATA=$(SHARED_DATA)
# BAZEL_TIER=unit runs only the unit tier under Bazel (CI: `make test` has
# already run the whole suite with pytest; Bazel then checks the build wiring).
BAZEL_TIER ?= all
ifeq ($(BAZEL_TIER),unit)
BAZEL_TEST_FLAGS += --test_arg=-m --test_arg='not slow and not integration'
endif
BAZEL_TARGETS ?= //...

.PHONY: bazel-install bazel-build bazel-test

bazel-install:
	@command -v bazel >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap; }

bazel-build: bazel-install $(STAMP)
	$(BAZEL_ENV) bazel build //...

bazel-test: bazel-install $(STAMP)
	$(BAZEL_ENV) bazel test $(BAZEL_TEST_FLAGS) $(BAZEL_TARGETS)
