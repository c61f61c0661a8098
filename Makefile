# Two entry points for a fresh machine (Python 3.11 + make + bash):
#   make demo   set up .venv and replay a county's programme year on SQLite
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz stateful mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	rm -f rollout-demo.db rollout-demo.db-wal rollout-demo.db-shm
	$(VENV)/bin/rollout --db sqlite:///rollout-demo.db demo

# pytest exits 5 when it collects no test; that is not a failure of the suite. The suite runs in one
# worker per core (pytest-xdist): every test has its own database, schema and ports, so they are
# independent; TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Province scale (50,000 schools, 1,000,000 teachers), SQLite and, with ROLLOUT_TEST_PG_URL, PostgreSQL;
# about 10 minutes; rewrites the generated table in docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# The fuzz test of the suite with many more examples (CSV, XLSX, workflow and plan files; both
# databases when ROLLOUT_TEST_PG_URL is set): a few minutes. FUZZ_EXAMPLES=N to change.
FUZZ_EXAMPLES ?= 1000
fuzz: $(STAMP)
	ROLLOUT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/engine/test_fuzz.py -q -p no:cacheprovider --timeout=3600 $(PYTEST_ARGS)

# The stateful test with its exploratory profile (new random sequences, longer, shrunk on failure):
# several minutes; CI runs the fixed derandomised profile.
stateful: $(STAMP)
	ROLLOUT_STATEFUL_PROFILE=explore $(PY) -m pytest tests/engine/test_engine_stateful.py -q -p no:cacheprovider --timeout=3600 $(PYTEST_ARGS)

# Mutation testing of the rule modules (mutmut 3): each module in its own scratch copy under
# build/mutate/ with only the tests that cover it; MUTATE_MODULES="deadline gate" for some of them.
# Two modules side by side, one child each: 48 minutes on 2 cores for all of them (2026-12-02); not
# part of CI. Scores: docs/testing.md.
MUTATE_MODULES ?=
MUTATE_CHILDREN ?= 2
mutate: $(STAMP)
	$(PY) tools/mutate.py --max-children $(MUTATE_CHILDREN) $(MUTATE_MODULES)

clean:
	rm -rf $(VENV) build/mutate rollout-demo.db* .pytest_cache .mypy_cache .ruff_cache
