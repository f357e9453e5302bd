# The two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint openapi bench bench-render package clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 needs pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m mmms_local.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 -q

openapi: $(STAMP)
	$(BIN)/python -m chalicelib.openapi docs/openapi.json

bench: $(STAMP)
	$(BIN)/python -m bench.bench_pipeline

bench-render: $(STAMP)
	$(BIN)/python -m bench.bench_render_budget

# CloudFormation package of a stage (STAGE=production by default) into build/package.
package: $(STAMP)
	CHALICE=$(BIN)/chalice PYTHON=$(BIN)/python infra/package.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
