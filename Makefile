# Everything a developer or CI runs. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The tests run on the Lambda runtime's Python (3.13) when this machine has it, else the newest of
# 3.12/3.11 it finds. Override with `make test PYTHON=/path/to/python3.x`.
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PYTHON ?= $(firstword $(foreach v,3.13 3.12 3.11,$(wildcard $(PYENV_ROOT)/versions/$(v)*/bin/python$(v)) $(shell command -v python$(v) 2>/dev/null)))
# The SAM CLI pins boto3 exactly, so it lives in a venv of its own; sam build finds python3.13 on PATH.
SAM_PYTHON ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.11*/bin/python3.11) $(shell command -v python3.11 2>/dev/null) $(PYTHON))
SAM_CLI_VERSION := 1.170.0
# checkov pins an old boto3 that conflicts with the SAM CLI's: it gets a venv of its own too.
CHECKOV_VERSION := 3.3.30

VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
SCAN_DIR := .aws-sam/scan
BIN := $(VENV)/bin
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= eu-west-1
export PATH := $(dir $(PYTHON)):$(PATH)

FN ?= GetItemFunction
EVENT ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt src/requirements.txt
	@test -n "$(PYTHON)" || { echo "No Python 3.11+ found; set PYTHON=" >&2; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --require-hashes -r src/requirements.txt
	@touch $@

$(SAM_VENV)/.installed:
	$(SAM_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

$(CHECKOV_VENV)/.installed:
	@test -n "$(PYTHON)" || { echo "No Python 3.11+ found; set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create the test virtual environment

.PHONY: lint
lint: $(BIN)/.installed ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: types
types: $(BIN)/.installed ## mypy, strict on src/
	$(BIN)/mypy

# The suite in tiers, a folder and a marker each (tests/conftest.py): `make unit` needs no AWS at
# all; `make test` runs every tier on every core (TEST_WORKERS), a test file per worker at a time,
# and prints the ten slowest tests. The three venvs are independent: they are built side by side.
TEST_WORKERS ?= auto
PYTEST_ALL := $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=10

.PHONY: venvs
venvs: $(BIN)/.installed $(CHECKOV_VENV)/.installed $(SAM_VENV)/.installed

.PHONY: test
test: ## Lint, types and the whole test suite, every tier (what CI runs)
	@$(MAKE) --no-print-directory -j3 venvs
	@$(MAKE) --no-print-directory lint types
	$(PYTEST_ALL)

.PHONY: unit
unit: $(BIN)/.installed ## The unit tier: no AWS, no server, no process (seconds)
	$(BIN)/pytest -q tests/unit

.PHONY: integration
integration: $(BIN)/.installed ## The integration tier: moto, the embedded AWS, worker processes
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/integration

.PHONY: e2e-tier
e2e-tier: $(BIN)/.installed $(SAM_VENV)/.installed ## The end-to-end tier: the stack's scenarios offline, whole commands, the real SAM CLI
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/e2e

.PHONY: infra
infra: $(BIN)/.installed $(CHECKOV_VENV)/.installed $(SAM_VENV)/.installed ## The infra tier: template, translation, pipeline, scanners, sam init
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/infra

# make test runs tests/integration/test_soak.py at scale 1 (2,000 invocations); this runs it SOAK_SCALE times longer.
.PHONY: soak
soak: SOAK_SCALE ?= 5
soak: $(BIN)/.installed ## The load soak, longer: SOAK_SCALE (5) x 2,000 invocations through the local runner
	SOAK_SCALE=$(SOAK_SCALE) $(BIN)/pytest -q tests/integration/test_soak.py

# make mutation measures the suite: mutmut (its own venv, requirements-mutation.txt) mutates every
# module of src/app, runs the fast in-process tests against each mutant (tools/mutation_selection.py),
# MUTATION_CHILDREN at a time, and tools/mutation_report.py writes mutation/report.md from the
# results and mutation/verdicts.toml; it fails below 90% killed or on a survivor with no verdict.
# Each run starts from a fresh mutants/; ARGS (mutant names or globs, e.g. ARGS="app.operations.requests.*")
# re-runs only those on the last run's mutants/. Not part of `make test`: the full run of 3,708
# mutants took 2 h 19 min with two children (mutation/report.md); go module by module with ARGS,
# or estimate the whole score with make mutation-sample.
MUTATION_VENV := .venv-mutation
MUTATION_CHILDREN ?= 2

$(MUTATION_VENV)/.installed: requirements-mutation.txt requirements-dev.txt src/requirements.txt
	@test -n "$(PYTHON)" || { echo "No Python 3.11+ found; set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/pip install --quiet --upgrade pip
	$(MUTATION_VENV)/bin/pip install --quiet -r requirements-dev.txt -r requirements-mutation.txt
	$(MUTATION_VENV)/bin/pip install --quiet --require-hashes -r src/requirements.txt
	@touch $@

.PHONY: mutation
mutation: $(MUTATION_VENV)/.installed ## Mutation testing of src/app: score and survivors in mutation/report.md (slow)
	$(if $(ARGS),,rm -rf mutants)
	start=$$(date +%s) && PATH=$(abspath $(MUTATION_VENV))/bin:$$PATH $(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_CHILDREN) $(ARGS) \
	  $(if $(ARGS),,&& echo $$(( $$(date +%s) - start )) > mutants/wall-seconds)
	$(MUTATION_VENV)/bin/python -m tools.mutation_report

# A run that cannot finish still measures the suite: a uniform sample of the mutants the last run
# left unchecked (SAMPLE of them, SEED), checked by mutmut; mutation/report.md then estimates the
# whole score from it (tools/mutation_sample.py).
SAMPLE ?= 150
SEED ?= 1
.PHONY: mutation-sample
mutation-sample: $(MUTATION_VENV)/.installed ## Check a uniform sample of the unchecked mutants; the report estimates the whole score
	names=$$($(MUTATION_VENV)/bin/python -m tools.mutation_sample $(SAMPLE) --seed $(SEED)) && \
	  PATH=$(abspath $(MUTATION_VENV))/bin:$$PATH $(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_CHILDREN) $$names
	$(MUTATION_VENV)/bin/python -m tools.mutation_report

.PHONY: mutation-report
mutation-report: $(MUTATION_VENV)/.installed ## Rewrite mutation/report.md from the last make mutation's mutants/
	$(MUTATION_VENV)/bin/python -m tools.mutation_report

.PHONY: invoke
invoke: $(BIN)/.installed ## Invoke FN (default GetItemFunction) with EVENT (default: its happy-path event) locally
	$(BIN)/python -m tools.emulator.local_invoke $(FN) $(if $(EVENT),--event $(EVENT)) $(ARGS)

.PHONY: aws
aws: $(BIN)/.installed ## Run the embedded AWS (template provisioned, seeded) until Ctrl-C; writes .aws-local/env.json
	$(BIN)/python -m tools.emulator.serve_aws $(ARGS)

# The template's HTTP API without Docker: routes, JWT authorizer and payload 2.0 as API Gateway has
# them, warm environments per function, against an embedded AWS. See tools/emulator/local_api.py.
.PHONY: api
api: $(BIN)/.installed ## Serve the template's HTTP API on 127.0.0.1 (JWT enforced, warm functions) until Ctrl-C
	$(BIN)/python -m tools.emulator.local_api $(ARGS)

SCOPES ?= items/read
.PHONY: token
token: $(BIN)/.installed ## Print a token of the local issuer that make api trusts (SCOPES="items/read items/export")
	@$(BIN)/python -m tools.emulator.local_issuer --scopes "$(SCOPES)" $(ARGS)

# The real `sam local` needs a container engine. `make engine` is the only target that installs
# system packages (Debian's docker.io) or starts a daemon, and only when asked: see tools/emulator/engine.sh.
.PHONY: engine
engine: $(SAM_VENV)/.installed ## Start a Docker engine (installs docker.io if missing; root) and build the offline Lambda image
	SAM_VENV=$(SAM_VENV) tools/emulator/engine.sh start

.PHONY: engine-stop
engine-stop: ## Stop the dockerd that make engine started (and sam local's containers)
	tools/emulator/engine.sh stop

# The real SAM CLI in Docker (`make engine` first where there is no engine), against an embedded AWS
# of its own, with the function role's credentials: see tools/emulator/sam_local.py.
.PHONY: sam-local
sam-local: $(BIN)/.installed build ## sam local invoke FN (default GetItemFunction) with EVENT in Docker, against the embedded AWS
	$(BIN)/python -m tools.emulator.sam_local invoke $(FN) $(if $(EVENT),--event $(EVENT)) -- $(ARGS)

.PHONY: sam-api
sam-api: $(BIN)/.installed build ## sam local start-api (port 3000, warm containers) against the embedded AWS, until Ctrl-C
	$(BIN)/python -m tools.emulator.sam_local start-api -- --warm-containers EAGER $(ARGS)

.PHONY: validate
validate: $(SAM_VENV)/.installed ## sam validate --lint
	$(SAM_VENV)/bin/sam validate --lint

.PHONY: build
build: $(SAM_VENV)/.installed ## sam build (artifacts in .aws-sam/)
	$(SAM_VENV)/bin/sam build

# `make bench` measures a `sam build` of its own (.aws-sam/bench/build, so .aws-sam/build stays what
# `make build` made), offline against the embedded AWS, for several minutes: see bench/run.py.
# Not part of `make test`, which runs a tiny version of it (tests/e2e/test_bench_smoke.py).
BENCH_BUILD := .aws-sam/bench
.PHONY: bench
bench: $(BIN)/.installed $(SAM_VENV)/.installed ## Cold starts, warm overhead, STS, memory, sizes, table export vs same-run baselines
	$(SAM_VENV)/bin/sam build --build-dir $(BENCH_BUILD)/build --cache-dir $(BENCH_BUILD)/cache
	$(BIN)/python -m bench --build-dir $(BENCH_BUILD)/build $(ARGS)
	$(BIN)/python -m bench.table_export_scaleout --build-dir $(BENCH_BUILD)/build $(SCALEOUT_ARGS)

# Only the cold starts, with nothing hooked: every function's init (and first invocation) from the
# same kind of build, paired with its baseline's in fresh processes (bench/plain_init.py), about a
# minute. ARGS="--repeats 21", "--before OTHER_BUILD_DIR" (another build, same rounds), "--no-first",
# "--phases --out FILE" (init split into boto3, Powertools, the handler's module: where it goes).
.PHONY: bench-cold
bench-cold: $(BIN)/.installed $(SAM_VENV)/.installed ## Cold init and first invocation, uninstrumented, of every function vs its baseline
	$(SAM_VENV)/bin/sam build --build-dir $(BENCH_BUILD)/build --cache-dir $(BENCH_BUILD)/cache
	$(BIN)/python -m bench.plain_init --build-dir $(BENCH_BUILD)/build $(ARGS)

# deploy and logs act on one samconfig.toml environment: ENV=dev is its [default], ENV=prod its
# [prod]. Only the make command line sets ENV (a shell's own ENV variable means something else).
ENV := dev
SAM_CONFIG_ENV = $(if $(filter dev,$(ENV)),default,$(if $(filter prod,$(ENV)),prod,$(error ENV must be dev or prod, not "$(ENV)")))
STACK_NAME = $(shell $(PYTHON) -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["global"]["parameters"]["stack_name"])' $(SAM_CONFIG_ENV))

.PHONY: env-check
env-check:
	@: $(SAM_CONFIG_ENV)

.PHONY: deploy
deploy: env-check build ## sam deploy to ENV=dev|prod with its samconfig.toml settings (asks before changing)
	$(SAM_VENV)/bin/sam deploy --config-env $(SAM_CONFIG_ENV) $(ARGS)

# make e2e runs the end-to-end scenarios (tests/e2e/test_stack.py, which `make test` runs offline)
# against ENV's deployed stack: its outputs give every address, PROFILE the credentials (none: the
# environment's, as in the pipeline). SMOKE=1 runs only the read-only ones (prod, after its deploy).
PROFILE ?=
SMOKE ?=
STACK_REGION = $(shell $(PYTHON) -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["global"]["parameters"]["region"])' $(SAM_CONFIG_ENV))

.PHONY: e2e
e2e: env-check $(BIN)/.installed ## The end-to-end scenarios against ENV=dev|prod's stack (PROFILE=..., SMOKE=1: read-only)
	@test -n "$(STACK_NAME)" || { echo "No stack_name for ENV=$(ENV) in samconfig.toml" >&2; exit 1; }
	E2E_STACK_NAME=$(STACK_NAME) E2E_REGION=$(STACK_REGION) E2E_PROFILE=$(PROFILE) E2E_SMOKE=$(SMOKE) \
	  $(BIN)/pytest -q -p no:xdist tests/e2e/test_stack.py $(ARGS)

.PHONY: logs
logs: env-check $(SAM_VENV)/.installed ## Tail the logs of every function in ENV=dev|prod's stack (ARGS="--name FN")
	@test -n "$(STACK_NAME)" || { echo "No stack_name for ENV=$(ENV) in samconfig.toml" >&2; exit 1; }
	$(SAM_VENV)/bin/sam logs --config-env $(SAM_CONFIG_ENV) --stack-name $(STACK_NAME) --tail $(ARGS)

.PHONY: new-service
new-service: OUT ?= ..
new-service: $(SAM_VENV)/.installed ## Start a new service from this template: sam init asks, writes to OUT (..)
	$(SAM_VENV)/bin/sam init --location "$(CURDIR)" --output-dir "$(OUT)" $(ARGS)

# src/requirements.txt is what `sam build` ships: pip-compile pins and hashes it. The dev lock is then
# resolved with the deployed versions as constraints, so the tests run what Lambda will run.
PIP_TOOLS_VERSION := 7.6.2

.PHONY: lock
lock: ## Re-pin src/requirements.txt (hashed) and requirements-dev.txt from their .in files (needs the package index)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && $(PYTHON) -m venv .venv-lock/pip-tools
	.venv-lock/pip-tools/bin/pip install --quiet pip-tools==$(PIP_TOOLS_VERSION)
	{ echo "# Generated by \`make lock\` from src/requirements.in; do not edit by hand. \`sam build\` installs it"; \
	  echo "# in pip's hash-checking mode: every package, dependencies included, is pinned and hashed."; \
	  .venv-lock/pip-tools/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras --no-header \
	    --no-emit-index-url --no-emit-find-links --output-file=- src/requirements.in; } > .venv-lock/requirements.txt
	mv .venv-lock/requirements.txt src/requirements.txt
	sed -nE 's/^([A-Za-z0-9._-]+==[^ ;]+).*/\1/p' src/requirements.txt > .venv-lock/deployed.txt
	.venv-lock/bin/pip install --quiet -r requirements-dev.in -c .venv-lock/deployed.txt
	{ echo "# Generated by \`make lock\` from requirements-dev.in; do not edit by hand."; \
	  .venv-lock/bin/pip freeze --exclude-editable; } > requirements-dev.txt
	rm -rf .venv-lock

.PHONY: scan
scan: $(BIN)/.installed $(CHECKOV_VENV)/.installed ## cfn-lint (no warnings) and checkov (with tools/checkov's checks) on the template and its translation
	$(BIN)/python -m tools.emulator.sam_template $(SCAN_DIR)/translated-dev.json
	$(BIN)/python -m tools.emulator.sam_template $(SCAN_DIR)/translated-prod.json Stage=prod
	$(BIN)/cfn-lint --regions $(AWS_DEFAULT_REGION) --include-checks I --non-zero-exit-code warning \
	  -- template.yaml $(SCAN_DIR)/translated-dev.json $(SCAN_DIR)/translated-prod.json
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download \
	  --framework cloudformation --external-checks-dir tools/checkov -f $(SCAN_DIR)/translated-dev.json

.PHONY: clean
clean: ## Remove virtual environments, build output and caches
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(MUTATION_VENV) mutants .aws-sam .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
