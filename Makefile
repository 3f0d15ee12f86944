# Quick start:  make demo   (set up, then run the bundled example on localhost)
#               make test   (set up, then run the whole test suite)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

$(BIN)/rustle-deploy: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $@

setup: $(BIN)/rustle-deploy

demo: setup
	$(BIN)/rustle-deploy examples/hello/plan.json --run

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider
	@if command -v cargo >/dev/null 2>&1; then \
		echo "cargo test (the native runner's own tests)"; \
		CARGO_TARGET_DIR=$(CURDIR)/.cargo-target cargo test --offline --quiet \
			--manifest-path src/rustle_deploy/native/Cargo.toml; \
	else echo "note: cargo not found: the native runner's own tests were skipped"; fi

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy

bench: setup
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) target .cargo-target build *.egg-info
