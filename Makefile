# The commands the README names. `make run` serves on SQLite; `make test`
# runs every check CI runs.

CARGO ?= cargo

.PHONY: run build test fmt-check lint layers check-postgres test-all openapi bench clean

run:
	$(CARGO) run --release -p sessiond -- serve

build:
	$(CARGO) build --release -p sessiond

test: fmt-check lint layers check-postgres test-all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

layers:
	./scripts/check-layers.sh

check-postgres:
	./scripts/check-postgres.sh

test-all:
	$(CARGO) test --workspace

# Regenerates the committed OpenAPI document (a test fails when it drifts).
openapi:
	$(CARGO) run -q -p sessiond -- openapi > openapi/openapi.json

bench:
	$(CARGO) run --release -p bench -- $(BENCH_ARGS)

clean:
	$(CARGO) clean
