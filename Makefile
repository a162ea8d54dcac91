# artifact-export: the commands a developer and CI need.
#   make demo    - run the main job on the embedded default (local Garage, sample config, two
#                  org plugins); installs what it needs first (make setup)
#   make test    - every test against the local S3 servers; installs what it needs first
#                  (make setup, make tools)
#   make setup   - what both need on a brand-new machine: the wasm32-wasip2 target (guest
#                  plugins), Garage, moto's server and LocalStack (installed if missing, then
#                  started)
#   make bench   - benchmarks against local Garage: copy throughput (direct and with 20 ms added
#                  latency), plugin decisions (Rust; JavaScript and Python glob-filters beside it),
#                  cold start through cargo-lambda's Runtime API emulator, a 100,000-object backfill
#                  against rclone (rclone installed if missing, make bench-tools)
#   make lint    - the import direction of host/src (tests/layers.py), rustfmt and clippy,
#                  warnings are errors
#   make tools   - cfn-lint, aws-sam-translator, cloud-radar and cargo-lambda into target/tools-venv,
#                  for the deploy tests (deploy/render.py) and the Runtime API end-to-end test
#                  (tests/integration/lambda_e2e.rs); ComponentizeJS into target/node-tools (npm),
#                  for the JavaScript plugin tests (plugins/glob-filter-js, plugin new --lang js);
#                  componentize-py 0.25.1 into target/tools-venv, for the Python plugin tests
#                  (tests/fixtures/plugins/glob-filter-py, plugin new --lang python)
#   make lambda  - the Lambda artifact (arm64 bootstrap) with cargo-lambda, installed if missing
#   make deploy  - make lambda, then `sam deploy --guided` of deploy/template.yaml (not run in CI)

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: setup wasm-target test test-servers stop-servers lint demo bench bench-tools build tools lambda deploy

# Python tools live in one venv under target/ (pip, from PyPI): cfn-lint for the template
# tests, aws-sam-translator (the SAM transform) and cloud-radar (parameters, conditions, intrinsic
# functions) for deploy/render.py, which the IAM tests use, cargo-lambda (with zig) for the arm64 build and its Runtime API emulator (end-to-end test,
# cold-start bench), aws-sam-cli for deploying.
TOOLS_VENV := target/tools-venv
TOOLS_BIN := $(abspath $(TOOLS_VENV))/bin
CFN_LINT_VERSION := 1.58.0
CARGO_LAMBDA_VERSION := 1.9.2
SAM_TRANSLATOR_VERSION := 1.115.0
CLOUD_RADAR_VERSION := 0.17.0
COMPONENTIZE_PY_VERSION := 0.25.1

build:
	$(CARGO) build --release -p artifact-export

# The one prerequisite of both README commands: a brand-new machine has rustup's stable
# toolchain and nothing else.
setup: wasm-target test-servers

# Guest plugins (the examples in plugins/, the hostile test fixtures) build for wasm32-wasip2.
wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# tests/servers/up.sh installs what is missing and starts the three test servers on free
# loopback ports under target/test-servers: Garage (cargo install), moto (target/test-venv)
# and LocalStack (target/localstack-venv, host mode, no Docker: S3, STS, KMS, SQS). LocalStack
# runs on Python 3.13 or later, found in pyenv or on PATH (under pyenv's 3.12.1 its runtime
# exits at start), and is pinned there: localstack-core[runtime]==2026.3.0 with cbor2<6,
# pyOpenSSL<24.3, cryptography<44 and service_identity: measured here (issue 28), 2026.3.0's
# runtime does not start with the newest releases of those three nor without
# service_identity, which its extras leave out. Its data is ephemeral (wiped at every start)
# and it sends no usage events.
test-servers:
	tests/servers/up.sh

stop-servers:
	tests/servers/down.sh

# Unit, binary and integration tests (there are no doctests; output shown, so every "SKIP on
# <server>: <reason>" line is visible), then one closing line with the
# totals of every test binary.
test: setup tools
	mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --lib --bins --tests -- --nocapture 2>&1 | tee target/test-output.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' target/test-output.log

# tests/layers.py: each module of host/src uses only the layers below it, and only `env` reads
# the process environment (the layers are declared there, lowest first).
lint:
	python3 tests/layers.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The demo builds with the test profile (dev), so `make demo` then `make test` compile
# wasmtime and the AWS SDK once, and only the example plugins (not the hostile fixtures).
demo: setup
	$(CARGO) build -p artifact-export -p demo --bins
	target/debug/demo

# cargo bench builds the binary the benchmark runs (CARGO_BIN_EXE_artifact-export) itself.
bench: setup $(TOOLS_VENV)/bin/cargo-lambda bench-tools
	$(CARGO) bench -p artifact-export --bench copy_throughput
	$(CARGO) bench -p artifact-export --bench plugin_decisions
	$(CARGO) bench -p artifact-export --bench cold_start
	$(CARGO) bench -p artifact-export --bench backfill_scale
	$(CARGO) bench -p artifact-export --bench routing_scale
	$(CARGO) bench -p artifact-export --bench inventory_read
	$(CARGO) bench -p artifact-export --bench config_load

# rclone, the backfill bench's yardstick, from Debian's package (no root needed: the .deb is
# unpacked under target/bench-tools/, nothing is installed system-wide; `apt-get update` is
# tried once when the package lists are missing). If it cannot be had, the bench prints a
# SKIP line for the comparison and still measures the function, so this never fails `make bench`.
BENCH_TOOLS := target/bench-tools
RCLONE := $(BENCH_TOOLS)/usr/bin/rclone
bench-tools: $(TOOLS_VENV)/bin/componentize-py
	@test -x $(RCLONE) || { \
	  mkdir -p $(BENCH_TOOLS)/deb && cd $(BENCH_TOOLS)/deb && rm -f rclone_*.deb && \
	  { apt-get download rclone || { apt-get update -qq && apt-get download rclone; }; } && \
	  cd - >/dev/null && dpkg -x $(BENCH_TOOLS)/deb/rclone_*.deb $(BENCH_TOOLS); \
	} || echo "rclone could not be installed from Debian's packages; backfill_scale will skip the comparison"
	@test -x $(RCLONE) && $(RCLONE) version | head -1 || true

$(TOOLS_VENV)/bin/python:
	python3 -m venv $(TOOLS_VENV)

$(TOOLS_VENV)/bin/cfn-lint: | $(TOOLS_VENV)/bin/python
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'cfn-lint==$(CFN_LINT_VERSION)'

# A marker file: the two libraries have no command of their own. Named after the versions, so
# changing a pin installs again.
RENDER_LIBS := $(TOOLS_VENV)/.render-libs-$(SAM_TRANSLATOR_VERSION)-$(CLOUD_RADAR_VERSION)
$(RENDER_LIBS): | $(TOOLS_VENV)/bin/python
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'aws-sam-translator==$(SAM_TRANSLATOR_VERSION)' 'cloud-radar==$(CLOUD_RADAR_VERSION)'
	touch $@

$(TOOLS_VENV)/bin/cargo-lambda: | $(TOOLS_VENV)/bin/python
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'cargo-lambda==$(CARGO_LAMBDA_VERSION)'

$(TOOLS_VENV)/bin/sam: | $(TOOLS_VENV)/bin/python
	$(TOOLS_VENV)/bin/python -m pip install --quiet aws-sam-cli

# Python plugins: componentize-py (CPython inside) builds `plugin new --lang python` projects
# and tests/fixtures/plugins/glob-filter-py for the plugin bench's `python` lines and the
# Python tests (which fail without it: `make test` runs `make tools`).
$(TOOLS_VENV)/bin/componentize-py: | $(TOOLS_VENV)/bin/python
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'componentize-py==$(COMPONENTIZE_PY_VERSION)'

# JavaScript plugins: ComponentizeJS (npm) turns a JS module into a component (SpiderMonkey
# inside). Its own CLI, not `jco componentize`: jco 1.35 cannot read a WIT folder given by path.
# Named after the version, so changing the pin installs again.
NODE_TOOLS := target/node-tools
COMPONENTIZE_JS_VERSION := 0.23.0
COMPONENTIZE_JS := $(NODE_TOOLS)/.componentize-js-$(COMPONENTIZE_JS_VERSION)
$(COMPONENTIZE_JS):
	mkdir -p $(NODE_TOOLS)
	npm install --prefix $(NODE_TOOLS) --no-audit --no-fund --no-save --loglevel error '@bytecodealliance/componentize-js@$(COMPONENTIZE_JS_VERSION)'
	touch $@

# The plugin bench's javascript lines build glob-filter-js with it (defined above, so here).
bench: $(COMPONENTIZE_JS)

tools: $(TOOLS_VENV)/bin/cfn-lint $(RENDER_LIBS) $(TOOLS_VENV)/bin/cargo-lambda $(COMPONENTIZE_JS) $(TOOLS_VENV)/bin/componentize-py

# target/lambda/artifact-export/bootstrap, for provided.al2023 on arm64 (Graviton), and the
# same zipped as target/lambda/artifact-export.zip (for `aws lambda update-function-code`;
# `sam deploy` zips the folder itself). The venv
# comes first on PATH so cargo-lambda finds zig (`python3 -m ziglang`) there.
lambda: $(TOOLS_VENV)/bin/cargo-lambda
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(TOOLS_BIN):$$PATH" $(CARGO) lambda build --release --arm64 -p artifact-export --bin artifact-export
	cd target/lambda/artifact-export && rm -f ../artifact-export.zip && python3 -m zipfile -c ../artifact-export.zip bootstrap
	@ls -l target/lambda/artifact-export/bootstrap target/lambda/artifact-export.zip

# Asks for the stack name, region and parameters (docs/deploy.md, "Deploy") and remembers the
# answers in samconfig.toml. Needs AWS credentials; never run in CI.
deploy: lambda $(TOOLS_VENV)/bin/sam
	$(TOOLS_BIN)/sam deploy --guided --template-file deploy/template.yaml --capabilities CAPABILITY_IAM
