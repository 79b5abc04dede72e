# The commands the README names. `make run` serves on SQLite; `make test`
# runs every check CI runs.

CARGO ?= cargo

.PHONY: run build test fmt-check lint layers doc check-postgres test-all contract venv openapi bench clean

run:
	$(CARGO) run --release -p sessiond -- serve

build:
	$(CARGO) build --release -p sessiond

test: fmt-check lint layers doc check-postgres test-all contract

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

layers:
	./scripts/check-layers.sh

check-postgres:
	./scripts/check-postgres.sh

# Every public item documented, no broken links (doctests run in test-all).
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# Some end-to-end tests run standard client libraries from the virtualenv
# (PyJWT), so it is built first.
test-all: venv
	$(CARGO) test --workspace

# schemathesis and a generated Python client against the running binary,
# on SQLite and PostgreSQL (scripts/api-contract.sh).
contract: venv
	./scripts/api-contract.sh

# The pinned Python tools of `contract`, in a local virtualenv.
VENV ?= .venv
venv: $(VENV)/.installed

$(VENV)/.installed: tests/contract/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/contract/requirements.txt
	touch $@

# Regenerates the committed OpenAPI document (a test fails when it drifts).
openapi:
	$(CARGO) run -q -p sessiond -- openapi > openapi/openapi.json

bench:
	$(CARGO) run --release -p bench -- $(BENCH_ARGS)

clean:
	$(CARGO) clean
