# Every entry point. Each target bootstraps what it needs (.venv from requirements.lock, node_modules from
# package-lock.json) when missing or out of date, and reuses it otherwise.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= dev
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
# The project's Node 22 and CDK CLI come first: jsii refuses to stay quiet on an end-of-life Node.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help bootstrap synth test lint typecheck test-unit test-infra-aws test-services bench deploy destroy clean

help:
	@echo "make synth [ENV=dev|prod]   Selfnest CloudFormation into cdk.out/ (bootstraps .venv and node_modules)"
	@echo "make test                   ruff, mypy and every test tier"
	@echo "make bench [ENV=dev|prod]   synth time against an empty CDK app (ratio, target <= 2.0x)"
	@echo "make deploy|destroy ENV=..  cdk deploy/destroy --all into your own AWS account (needs credentials)"

$(PY_STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bootstrap: $(PY_STAMP) $(NODE_STAMP)

synth: bootstrap
	$(PY) -m refarch.tools.synth --env $(ENV)

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy -p refarch.stacks -p refarch.constructs.aws -p refarch.tools -p tests
	$(VENV)/bin/mypy services/selfnest_api

test-unit: $(PY_STAMP)
	$(PY) -m pytest tests/unit

test-infra-aws: bootstrap
	$(PY) -m pytest tests/infra/aws

test-services: $(PY_STAMP)
	$(PY) -m pytest tests/services

test: bootstrap lint typecheck
	$(PY) -m pytest

bench: bootstrap
	$(PY) -m refarch.tools.bench --env $(ENV)

deploy: bootstrap
	cdk deploy --all -c env=$(ENV)

destroy: bootstrap
	cdk destroy --all -c env=$(ENV)

clean:
	rm -rf cdk.out .plan .pytest_cache .mypy_cache .ruff_cache
