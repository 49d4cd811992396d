# segnas: one-command reproduction. `make demo` = set-up + the whole quickstart (prepare ->
# report, synthetic data, CPU); `make test` = set-up + the test suite. See docs/pipeline.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.segnas-installed
# OpenMP threads sleep instead of spinning while waiting (concurrent jobs on few CPU cores).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test test-fast lint snakemake repro-check clean-outputs

# The install step the README documents: pinned torch first, then the project (editable) + dev.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH_PINS)
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

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
