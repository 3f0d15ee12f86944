# Quick start:  make demo   (set up, then run the bundled example on localhost)
#               make test   (set up, then run the whole test suite)
# requirements.lock pins every package of the controller and its test and dev extras, with
# hashes (written by uv; `make lock` refreshes it). pyproject.toml keeps the ranges for people
# who install the package into their own environment; `make test-latest` runs the suite
# against the newest releases those ranges allow, without the tiers that compare with pinned
# downloads (ansible-core 2.19.14's integration targets, the `ansible` 12.3.0 collections):
# those run in `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LATEST ?= .venv-latest

.PHONY: setup demo test test-latest latest-env fuzz acceptance lint lock bench clean oracle-check oracle-record

$(BIN)/rustle-deploy: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/rustle-deploy

demo: setup
	$(BIN)/rustle-deploy examples/hello/plan.json --run

# The suite runs on TEST_WORKERS pytest-xdist workers, a test file per worker at a time (module
# fixtures such as an oracle's ansible-playbook run stay single); much of it waits on sshd and
# subprocesses, so more workers than cores pays. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 4
XDIST = -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--dist loadfile)

# The controller-side Pythons of the suite (pytest's workers, the rustle-deploy and
# ansible-playbook processes the tests start) keep their bytecode in PYCACHE, outside the source
# tree, even where the environment sets PYTHONDONTWRITEBYTECODE (this machine does: each worker
# then parsed, rewrote and compiled every test module, ~7 CPU-s, and each rustle-deploy process
# compiled the modules it imports, ~0.2 CPU-s). No __pycache__ is written beside a source, so no
# artifact or wheel can pick one up; the hosts' Python runs with -I, which ignores both variables.
# One collection fills it before the workers start, so that they do not all compile at once.
PYCACHE ?= $(CURDIR)/.pycache
PYENV = PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(PYCACHE)
WARM = $(PYENV) $(BIN)/python -m pytest -q -p no:cacheprovider --collect-only >/dev/null 2>&1 || true

# `cargo test` (the native runner's own tests: a debug build of the crate, then 122 tests that
# mostly wait on the processes they start: 14 s of CPU in 5 minutes under a load of 35) runs beside
# pytest at the lowest priority, taking the CPU pytest leaves, instead of adding its minutes after
# it; its output is shown when both are done, and either failing fails `make test`.
CARGO_TEST = CARGO_TARGET_DIR=$(CURDIR)/.cargo-target nice -n 19 cargo test --offline --quiet \
	--manifest-path src/rustle_deploy/native/Cargo.toml

test: setup
	@mkdir -p .cargo-target; cargo=; \
	if command -v cargo >/dev/null 2>&1; then \
		$(CARGO_TEST) >.cargo-target/test.log 2>&1 & cargo=$$!; \
		trap 'kill $$cargo 2>/dev/null; exit 130' INT TERM; \
	fi; \
	$(WARM); \
	echo "$(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST)"; \
	$(PYENV) $(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST); status=$$?; \
	if [ -n "$$cargo" ]; then \
		echo "cargo test (the native runner's own tests)"; \
		wait $$cargo || status=1; cat .cargo-target/test.log; \
	else echo "note: cargo not found: the native runner's own tests were skipped"; fi; \
	exit $$status

# The suite once more, in a second environment with the newest releases the ranges allow, so an
# upstream release that breaks us is seen here before a user meets it. Left out, as they do not
# depend on those releases: the tiers that compare with pinned downloads (above), and
# tests/native/test_wheel.py, whose cost is cargo building the runner from scratch and pip's
# isolated build of the wheel (the same setuptools in both environments); the native deployments
# it also makes are those of tests/native/test_native_runs.py, which runs here. Its oracles replay
# the records of its ansible-core when they are committed (`make oracle-record` writes them for
# both environments); a newer release has none yet and runs them live (docs/decisions.md,
# "The newest ansible-core's oracle records").
LATEST_PYTEST = $(PYENV) $(LATEST)/bin/python -m pytest -q -p no:cacheprovider $(XDIST) \
	-m "not acceptance and not collections" --ignore=tests/native/test_wheel.py

latest-env:
	rm -rf $(LATEST)
	$(PY) -m venv $(LATEST)
	$(LATEST)/bin/pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST)/bin/pip list --format=freeze | grep -iE '^(asyncssh|cryptography|click|rich|pyyaml|jinja2|pytest|hypothesis|ansible-core)=='

test-latest: latest-env
	$(LATEST_PYTEST)

# The differential tests' ansible-core side is recorded in tests/data/oracle/ and replayed
# (tests/oracle.py; a missing record is made by a live run), keyed by ansible-core's version among
# the inputs. oracle-check runs those tests (marker `oracle`) with ansible-core live, in both
# environments (the lock's and test-latest's), and fails on any record it does not reproduce;
# oracle-record rewrites them all in both, then removes the records neither used (only after runs
# that passed: a test that stopped before its oracle would lose its record).
ORACLE_PYTEST = $(PYENV) $(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) -m oracle
LATEST_ORACLE = $(subst not acceptance,oracle and not acceptance,$(LATEST_PYTEST))
oracle-check: setup latest-env
	RUSTLE_ORACLE=live $(ORACLE_PYTEST)
	RUSTLE_ORACLE=live $(LATEST_ORACLE)

oracle-record: setup latest-env
	@stamp=$$(mktemp); \
	{ RUSTLE_ORACLE=record $(ORACLE_PYTEST) && RUSTLE_ORACLE=record $(LATEST_ORACLE); } || \
		{ rm -f $$stamp; echo "oracle-record: tests failed, no record removed"; exit 1; }; \
	find tests/data/oracle -name '*.json' ! -newer $$stamp -print -delete; rm -f $$stamp

# Fuzz every input (inventories in each format, every connection variable, plans, config files,
# RUSTLE_* variables, flags) with hypothesis: the suite's 2,910 examples times FUZZ_SCALE, about
# 100,000; any traceback fails it. tests/fuzzing.py says what is checked.
FUZZ_SCALE ?= 35
fuzz: setup
	RUSTLE_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz

# ansible-core's own integration targets (role-shaped ones) under ansible-playbook and
# rustle-deploy; writes docs/acceptance.md. The sdist is fetched once into
# ~/.cache/rustle-deploy/acceptance/; ansible-playbook's results are cached there too
# (ACCEPTANCE_ARGS=--oracle re-runs them; name targets to run only those). With a cache of
# one's own (RUSTLE_ACCEPTANCE_CACHE=DIR) the report goes to DIR/acceptance.md instead
# (ACCEPTANCE_ARGS="--report docs/acceptance.md" writes the checkout's).
# ACCEPTANCE_ARGS="--runme handlers blocks" runs the ansible-playbook lines of those targets'
# runme.sh under both tools instead (tests/acceptance/runme.py): the report's second table.
ACCEPTANCE_ARGS ?=
acceptance: setup
	$(BIN)/python -m tests.acceptance $(ACCEPTANCE_ARGS)

# Rewrite requirements.lock from pyproject.toml's ranges (newest allowed releases, with hashes).
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra test --extra dev --universal --generate-hashes \
		--python-version 3.11 --upgrade -q -o requirements.lock

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy

bench: setup
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(LATEST) $(PYCACHE) target .cargo-target build *.egg-info
