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
# Material for MkDocs prints a banner about its successor on every build; the notice is in the report, not the log.
export NO_MKDOCS_2_WARNING := 1

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The local AWS emulator's own environment (MiniStack pins a botocore the project's boto3 cannot share).
EMULATOR_VENV := .venv-emulator
EMULATOR_STAMP := $(EMULATOR_VENV)/.installed

.PHONY: help bootstrap synth plan-azure test lint typecheck test-unit test-infra-aws test-infra-azure test-services \
	postgres-server bench lab labs deploy destroy clean diagrams cost-tables lab-costs docs docs-serve graphviz chromium up down demo \
	follow

help:
	@echo "make synth [ENV=dev|lab|prod] [DR_TIER=backup_restore|pilot_light|warm_standby]  Selfnest CloudFormation into cdk.out/"
	@echo "make plan-azure [STACK=dev|prod]  BabyBloom offline plan (Pulumi mocks) into .plan/"
	@echo "make test                   ruff, mypy and every test tier"
	@echo "make bench [ENV=dev|prod]   synth time against an empty CDK app (ratio, target <= 2.0x)"
	@echo "make lab LAB=NN             grade one learning lab offline (docs/labs/); make labs lists them"
	@echo "make diagrams               architecture diagrams (SVG, PNG, model JSON) from the templates and plan into docs/diagrams/"
	@echo "make cost-tables            regenerate README.md's cost tables (refarch cost [--env ..] [--azure --stack ..] for one)"
	@echo "make lab-costs              regenerate each lab page's bill impact (cost before/after its reference solution)"
	@echo "make docs                   the static documentation site into site/ (make docs-serve to browse it)"
	@echo "make up [ENV=dev] [LOCAL_PORT=]  Selfnest deployed into a local AWS emulator and running (docs/local.md)"
	@echo "make demo                   drive the running local deployment like real clients; make down stops it"
	@echo "make follow ID=...          every local log line of one booking (its id or a correlation id), in time order"
	@echo "make deploy|destroy ENV=..  cdk deploy --all / destroy this env's stacks in your own AWS account (needs credentials)"

# The stamp holds the checkout's path. A copied, moved or renamed checkout brings a .venv whose editable install (and
# script shebangs) point at the old path, which would then be imported, synthesized and graded: reinstall everything.
INSTALLED_FOR := $(shell cat $(PY_STAMP) 2>/dev/null)
ifneq ($(INSTALLED_FOR),$(CURDIR))
.PHONY: $(PY_STAMP)
REINSTALL := $(if $(INSTALLED_FOR),--reinstall)
endif

$(PY_STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(if $(REINSTALL),echo "this checkout moved from $(INSTALLED_FOR): reinstalling .venv for $(CURDIR)")
	@$(PY) -m pip install --quiet --disable-pip-version-check $(REINSTALL) uv==$(UV_VERSION)
	# Bytecode up front: pulumi_azure_native is huge, and recompiling it on every run would dominate plan time.
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) $(REINSTALL) -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) --reinstall-package refarch --no-deps -e .
	@echo "$(CURDIR)" > $@

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bootstrap: $(PY_STAMP) $(NODE_STAMP)

synth: bootstrap
	$(PY) -m refarch.tools.synth --env $(ENV) $(DR_TIER_ARGS)
	@echo
	@# Selfnest environments (config/) and BabyBloom stacks (Pulumi.<stack>.yaml) need not match: lab is Selfnest's.
	@if [ -f Pulumi.$(ENV).yaml ]; then \
		echo "BabyBloom $(ENV) (offline Pulumi plan; full listing: make plan-azure STACK=$(ENV)):"; \
		$(PY) -m refarch.tools.plan_azure --stack $(ENV) | tail -n 3; \
	else echo "BabyBloom has no $(ENV) stack (no Pulumi.$(ENV).yaml): make plan-azure STACK=dev|prod"; fi

plan-azure: $(PY_STAMP)
	$(PY) -m refarch.tools.plan_azure --stack $(STACK)

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .

# The booking API is a container's own package (services/selfnest_api/selfnest_api), imported by its tests as such;
# the deploy-time handlers are flat modules (services/selfnest_deploy), imported by theirs the same way.
typecheck: export MYPYPATH := services/selfnest_api:services/selfnest_deploy
typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy -p refarch.stacks -p refarch.constructs.aws -p refarch.constructs.azure -p refarch.policies \
		-p refarch.tools -p refarch.labs -p refarch.local -p tests
	$(VENV)/bin/mypy -p selfnest_api
	# Lambda handlers are flat modules in their asset folders (Lambda imports them from the asset root); the consumers
	# also hold the booking API package (its correlation-id rule).
	MYPYPATH=services/selfnest_events:services/selfnest_api $(VENV)/bin/mypy services/selfnest_events
	MYPYPATH=services/selfnest_identity $(VENV)/bin/mypy services/selfnest_identity
	MYPYPATH=services/selfnest_deploy $(VENV)/bin/mypy services/selfnest_deploy
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

# Diagrams are laid out by Graphviz and the docs site is tested in Chromium, both from apt, installed when missing.
APT_INSTALL = sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends
graphviz:
	@command -v dot >/dev/null || { $(APT_INSTALL) graphviz fonts-dejavu-core; }

chromium:
	@command -v chromium >/dev/null || { $(APT_INSTALL) chromium fonts-dejavu-core; }

diagrams: bootstrap graphviz
	$(PY) -m refarch.tools.architecture

cost-tables: bootstrap
	$(PY) -m refarch.tools.cost_tables

# Each lab page's "what it does to the bill", from refarch cost before and after its reference solution.
lab-costs: bootstrap
	$(PY) -m refarch.tools.lab_costs

docs: $(PY_STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(PY_STAMP)
	$(VENV)/bin/mkdocs serve

test-services: $(PY_STAMP) postgres-server
	$(PY) -m pytest tests/services

# One worker more than cores (TEST_WORKERS=1 for a serial run): about a quarter of the suite's worker time waits on
# emulators, deploys and timers, and the extra worker fills it (2 cores: 12m41s with 3 workers, 13m35s-14m46s with 2,
# the same CPU time). Whole files go to one worker, so a module's fixtures start once.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: bootstrap lint typecheck postgres-server graphviz chromium $(EMULATOR_STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# BENCH_ARGS=--no-suite skips the warm `make test` and the fresh-clone CI run (minutes each).
BENCH_ARGS ?=
bench: bootstrap postgres-server $(EMULATOR_STAMP)
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

# Only this environment's stacks: selfnest-account (account-wide settings other environments rely on) stays.
destroy: bootstrap
	cdk destroy -c env=$(ENV) $(DR_TIER_CONTEXT) 'selfnest-$(ENV)/*'

LOCAL_PORT ?=
# `make up`: MiniStack on 127.0.0.1, `cdk bootstrap` + `cdk deploy` into it, PostgreSQL and the booking API as local
# processes; returns when ready. `make down` stops every process it started, by PID.
$(EMULATOR_STAMP): local/emulator-requirements.lock $(PY_STAMP)
	@test -x $(EMULATOR_VENV)/bin/python || $(PYTHON) -m venv $(EMULATOR_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(EMULATOR_VENV)/bin/python -r local/emulator-requirements.lock
	@touch $@

up: bootstrap postgres-server $(EMULATOR_STAMP)
	@$(PY) -m refarch.local up --env $(ENV) $(if $(LOCAL_PORT),--port $(LOCAL_PORT))

down: $(PY_STAMP)
	@$(PY) -m refarch.local down

demo: $(PY_STAMP)
	@$(PY) -m refarch.local demo

ID ?=
# `make follow ID=<booking id or correlation id>`: the API's and every function's lines for it, oldest first.
# ID reaches the command through the environment, never pasted into the shell line (a quote in it stays data).
follow: export ID := $(ID)
follow: $(PY_STAMP)
	@test -n "$$ID" || { echo "usage: make follow ID=<booking id or correlation id> (make demo prints one)" >&2; exit 2; }
	@$(PY) -m refarch.local follow "$$ID"

clean:
	rm -rf cdk.out .plan .pytest_cache .mypy_cache .ruff_cache site .local
