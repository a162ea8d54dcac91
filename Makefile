# artifact-export: the commands a developer and CI need.
#   make test    - start the local S3 servers (installing them if missing) and run every test
#   make demo    - run the main job on the embedded default (local Garage, sample config)
#   make bench   - benchmarks against local Garage (direct and with 20 ms added latency)
#   make lint    - rustfmt and clippy, warnings are errors

CARGO ?= cargo

.PHONY: test test-servers stop-servers lint demo bench build

build:
	$(CARGO) build --release -p artifact-export

test-servers:
	tests/servers/up.sh

stop-servers:
	tests/servers/down.sh

test: test-servers
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

demo: test-servers
	$(CARGO) build --release -p artifact-export --bin artifact-export --example demo
	target/release/examples/demo

bench: test-servers
	$(CARGO) build --release -p artifact-export --bin artifact-export
	$(CARGO) bench -p artifact-export --bench copy_throughput
