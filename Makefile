# The two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The Lambda package is built by Chalice running on Python 3.12 (SnapStart needs python3.12+):
# a second venv with the runtime dependencies and Chalice only.
LAMBDA_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
LAMBDA_VENV   := $(VENV)/lambda
LAMBDA_STAMP  := $(LAMBDA_VENV)/.installed
STAGE  ?= production
JS     := clients/js
JS_STAMP := $(JS)/node_modules/.installed
# The browser tests' Chromium: CHROMIUM=/path, else Debian's (`apt-get install -y chromium`).
CHROMIUM ?= $(firstword $(wildcard /usr/bin/chromium /usr/bin/chromium-browser))

.PHONY: run test test-js lint mutation openapi bench bench-render bench-campaign bench-cold-start bench-policy package deploy clean

$(STAMP): requirements.txt requirements-dev.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 needs pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(LAMBDA_STAMP): requirements.txt
	$(LAMBDA_PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install --quiet --upgrade "pip<26.3"
	$(LAMBDA_VENV)/bin/python -m pip install --quiet -r requirements.txt "chalice==1.34.0"
	touch $(LAMBDA_STAMP)

run: $(STAMP)
	$(BIN)/python -m mmms_local.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The JavaScript client's packages, exactly as package-lock.json pins them (npm registry only).
$(JS_STAMP): $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

# clients/js: types drift check, tsc, node --test unit tests, bundle size budget.
test-js: $(JS_STAMP)
	cd $(JS) && npm test --silent

test: lint test-js $(LAMBDA_STAMP)
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest -n 2 -q
	@if [ -z "$(CHROMIUM)" ]; then \
	  echo "NOTE: the browser tests did NOT run: no Chromium found (apt-get install -y chromium, or make test CHROMIUM=/path/to/chromium)"; \
	else echo "Browser tests ran with $(CHROMIUM)"; fi

# Mutation testing of the modules whose mistakes cost mail (slow; not part of `make test`):
# figures in TESTING.md. MUTATION_CHILDREN=n runs n mutants at once.
mutation: $(STAMP)
	nice -n 10 $(BIN)/python -m tests.mutation

# The contract, then what is generated from it: the clients' types (checked by make test).
openapi: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m mmms_local.openapi_document docs/openapi.json
	cd $(JS) && node scripts/types.mjs
	$(BIN)/python clients/python/scripts/models.py

bench: $(STAMP)
	$(BIN)/python -m bench.bench_pipeline

bench-render: $(STAMP)
	$(BIN)/python -m bench.bench_render_budget

# Campaign files through the processing code: 100,000 and 1,000,000 rows (bench/README.md).
bench-campaign: $(STAMP)
	$(BIN)/python -m bench.bench_campaign

bench-cold-start: $(STAMP)
	$(BIN)/python -m bench.bench_cold_start

bench-policy: $(STAMP)
	$(BIN)/python -m bench.bench_policy

# CloudFormation package of a stage (STAGE=production by default) into build/package.
package: $(STAMP) $(LAMBDA_STAMP)
	STAGE=$(STAGE) CHALICE=$(LAMBDA_VENV)/bin/chalice PYTHON=$(BIN)/python infra/package.sh

# Package, upload the code, create or update the stack mmms-$(STAGE) (the migrations run
# inside it). PARAMETERS="SubnetIds=subnet-a,subnet-b AlarmEmail=ops@example.org ...".
deploy: package
	STAGE=$(STAGE) infra/deploy.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(JS)/node_modules
