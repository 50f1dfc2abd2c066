# Every entry point. Each target bootstraps what it needs (.venv from requirements.lock, node_modules from
# package-lock.json) when missing or out of date, and reuses it otherwise.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= dev
DR_TIER ?=
# `make synth ENV=prod DR_TIER=pilot_light`: overrides config's dr.tier (validated like the file).
DR_TIER_ARGS := $(if $(DR_TIER),--dr-tier $(DR_TIER))
DR_TIER_CONTEXT := $(if $(DR_TIER),-c dr_tier=$(DR_TIER))
STACK ?= dev
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
# The project's Node 22 and CDK CLI come first: jsii refuses to stay quiet on an end-of-life Node.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help bootstrap synth plan-azure test lint typecheck test-unit test-infra-aws test-infra-azure test-services \
	postgres-server bench lab labs deploy destroy clean

help:
	@echo "make synth [ENV=dev|prod] [DR_TIER=backup_restore|pilot_light]  Selfnest CloudFormation into cdk.out/"
	@echo "make plan-azure [STACK=dev|prod]  BabyBloom offline plan (Pulumi mocks) into .plan/"
	@echo "make test                   ruff, mypy and every test tier"
	@echo "make bench [ENV=dev|prod]   synth time against an empty CDK app (ratio, target <= 2.0x)"
	@echo "make lab LAB=NN             grade one learning lab offline (docs/labs/); make labs lists them"
	@echo "make deploy|destroy ENV=..  cdk deploy/destroy --all into your own AWS account (needs credentials)"

$(PY_STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# Bytecode up front: pulumi_azure_native is huge, and recompiling it on every run would dominate plan time.
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) --no-deps -e .
	@touch $@

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bootstrap: $(PY_STAMP) $(NODE_STAMP)

synth: bootstrap
	$(PY) -m refarch.tools.synth --env $(ENV) $(DR_TIER_ARGS)
	@echo
	@echo "BabyBloom $(ENV) (offline Pulumi plan; full listing: make plan-azure STACK=$(ENV)):"
	@$(PY) -m refarch.tools.plan_azure --stack $(ENV) | tail -n 3

plan-azure: $(PY_STAMP)
	$(PY) -m refarch.tools.plan_azure --stack $(STACK)

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .

# The booking API is a container's own package (services/selfnest_api/selfnest_api), imported by its tests as such.
typecheck: export MYPYPATH := services/selfnest_api
typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy -p refarch.stacks -p refarch.constructs.aws -p refarch.constructs.azure -p refarch.policies \
		-p refarch.tools -p refarch.labs -p tests
	$(VENV)/bin/mypy -p selfnest_api
	# Lambda handlers are flat modules in their asset folders (Lambda imports them from the asset root).
	MYPYPATH=services/selfnest_events $(VENV)/bin/mypy services/selfnest_events
	MYPYPATH=services/selfnest_identity $(VENV)/bin/mypy services/selfnest_identity
	# The chat asset also holds the booking API's token verifier and the events' consumer helpers (shared modules).
	MYPYPATH=services/selfnest_chat:services/selfnest_events:services/selfnest_api $(VENV)/bin/mypy services/selfnest_chat
	$(VENV)/bin/mypy services/babybloom_functions

test-unit: $(PY_STAMP)
	$(PY) -m pytest tests/unit

test-infra-aws: bootstrap
	$(PY) -m pytest tests/infra/aws

test-infra-azure: $(PY_STAMP)
	$(PY) -m pytest tests/infra/azure

# The API tests start a throwaway PostgreSQL (initdb, pg_ctl): install the server where it is missing.
postgres-server:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && $$sudo apt-get install -y --no-install-recommends postgresql; fi

test-services: $(PY_STAMP) postgres-server
	$(PY) -m pytest tests/services

# One worker per core (TEST_WORKERS=1 for a serial run); whole files go to one worker, so a module's fixtures start once.
TEST_WORKERS ?= auto
test: bootstrap lint typecheck postgres-server
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# BENCH_ARGS=--no-suite skips the warm `make test` and the fresh-clone CI run (minutes each).
BENCH_ARGS ?=
bench: bootstrap
	$(PY) -m refarch.tools.bench --env $(ENV) $(BENCH_ARGS)

LAB ?=
# `make lab LAB=03`: PASS/FAIL per check with a hint; exits non-zero until every check passes.
lab: bootstrap
	@test -n "$(LAB)" || { echo "usage: make lab LAB=NN (make labs lists them)" >&2; exit 2; }
	$(VENV)/bin/refarch lab $(LAB)

labs: $(PY_STAMP)
	@$(VENV)/bin/refarch labs

# Placeholders (example certificate ARN, example domain) stop a deploy here, in one line each; a direct `cdk deploy`
# is stopped by the same check as a CloudFormation rule in every stack.
deploy: bootstrap
	$(PY) -m refarch.tools.preflight --env $(ENV) $(DR_TIER_ARGS)
	cdk deploy --all -c env=$(ENV) $(DR_TIER_CONTEXT)

destroy: bootstrap
	cdk destroy --all -c env=$(ENV) $(DR_TIER_CONTEXT)

clean:
	rm -rf cdk.out .plan .pytest_cache .mypy_cache .ruff_cache
