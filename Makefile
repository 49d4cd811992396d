# segnas: one-command reproduction. `make demo` = set-up + the whole quickstart (prepare ->
# report, synthetic data, CPU); `make test` = set-up + the test suite. See docs/pipeline.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The whole environment, every package at an exact version with its hashes, for CPython
# LOCK_PYTHON on LOCK_PLATFORM (the project's machines, CI, the image); `make lock` writes it.
LOCK ?= requirements.lock
LOCK_PYTHON ?= 3.11
LOCK_PLATFORM ?= x86_64-manylinux_2_28
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Locked with pyproject.toml's requirements: the torch pair; typing below 3.10 (uv ignores
# upper bounds of Requires-Python, and typing 3.10.0.0, for Python < 3.5, is refused by pip);
# python-dateutil below 3, so that uv locks what pip resolves from the same ranges (celery
# 5.7, python-dateutil 2.9), not the new major python-dateutil 4 with an older celery.
LOCK_PINS := $(TORCH_PINS) 'typing<3.10' 'python-dateutil<3'
# Holds the path of the lock installed into the venv (tests/test_environment.py reads it).
STAMP := $(VENV)/.segnas-installed
UV_VERSION := 0.13.9
UV := .venv-uv/bin/uv
# OpenMP threads sleep instead of spinning while waiting (concurrent jobs on few CPU cores).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install lock demo test test-fast lint snakemake repro-check clean-outputs FORCE

# The install step the README documents: the locked environment, then the project (editable,
# built with the locked setuptools). Reruns when the lock or pyproject.toml changes, or when
# LOCK names another lock than the one installed.
$(STAMP): $(LOCK) pyproject.toml $(if $(filter $(LOCK),$(shell cat $(STAMP) 2>/dev/null)),,FORCE)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@v=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	test "$$v" = "$(LOCK_PYTHON)" || { echo "make install: $(VENV) runs Python $$v but $(LOCK)" \
	  "is for Python $(LOCK_PYTHON): rm -rf $(VENV) && make install PYTHON=python$(LOCK_PYTHON)" \
	  "(another Python: docs/pipeline.md, \"Lock file\")" >&2; exit 1; }
	$(BIN)/pip install --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	echo $(LOCK) > $(STAMP)

install: $(STAMP)

# Rewrites $(LOCK) from pyproject.toml (dependencies + dev extra) and LOCK_PINS with uv,
# keeping the versions already locked (UPGRADE=1: the newest allowed). TORCH_INDEX=URL takes
# torch from another wheel index (docs/pipeline.md, "Lock file").
lock: $(UV)
	printf '%s\n' $(LOCK_PINS) | $(UV) pip compile pyproject.toml - --extra dev \
	  --generate-hashes --python-version $(LOCK_PYTHON) --python-platform $(LOCK_PLATFORM) \
	  $(if $(UPGRADE),--upgrade) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX) --emit-index-url) \
	  --custom-compile-command 'make lock' --output-file $(LOCK)

# uv, pinned, in a venv of its own (not the project's).
$(UV):
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install uv==$(UV_VERSION)

# The quickstart with DVC; a second `make demo` executes no stage.
demo: install
	$(BIN)/segnas config validate params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	@echo "report: $(CURDIR)/report/report.html"

# The same pipeline with Snakemake (local executor profile).
snakemake: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile workflow/profiles/local
	@echo "report: $(CURDIR)/report/report.html"

# The whole suite, slow end-to-end tests included (what CI runs); test-fast leaves those out.
test: install
	$(BIN)/pytest -q -rs

test-fast: install
	$(BIN)/pytest -q -rs -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakemake --lint
	$(BIN)/hadolint Dockerfile

repro-check: install
	$(BIN)/segnas repro-check

# Removes every pipeline output (not the DVC cache): the next run starts from scratch.
clean-outputs:
	rm -rf data cache search compare models results report dvclive .snakemake
