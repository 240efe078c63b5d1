# Everything installs itself: a bootstrap venv gets uv from PyPI, uv installs the locked project.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen
# Where Python is told to write no bytecode (PYTHONDONTWRITEBYTECODE), every `chorus` process
# compiles each module it imports again: about a second a start, and the suites start hundreds.
# The compiled modules are kept under .tools instead.
export PYTHONPYCACHEPREFIX := $(CURDIR)/.tools/pycache
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install demo serve test lint typecheck architecture unit integration e2e fuzz bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

install: .venv/.synced

demo: install
	$(RUN) chorus demo $(ARGS)

serve: install
	$(RUN) chorus serve $(ARGS)

lint: install
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench

typecheck: install
	$(RUN) mypy

architecture: install
	$(RUN) lint-imports

# One pytest worker a core; a test file stays on one worker, so a file's shared service (and the
# order of its tests) holds. TEST_WORKERS=0 runs everything in this process. The static checks
# run beside the tests, their output shown after them: the tests' first minute leaves a core idle
# (on a fresh clone one worker trains the suites' intent model while the other waits for it).
TEST_WORKERS ?= auto
test: install
	@$(MAKE) --no-print-directory lint typecheck architecture > $(TOOLS)/checks.log 2>&1 & checks=$$!; \
	$(RUN) pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS); tests=$$?; \
	wait $$checks; checked=$$?; cat $(TOOLS)/checks.log; \
	if [ $$checked -ne 0 ]; then echo "make test: the static checks failed (above)"; fi; \
	[ $$tests -eq 0 ] && [ $$checked -eq 0 ]

unit: install
	$(RUN) pytest -q tests/unit tests/property

# The fuzz test of `make test` with many more examples an operation; CHORUS_FUZZ_SEED=N for a
# random run instead of the deterministic one, CHORUS_FUZZ_SECONDS bounds the run.
CHORUS_FUZZ_EXAMPLES ?= 1000
CHORUS_FUZZ_SECONDS ?= 3600
fuzz: install
	CHORUS_FUZZ_EXAMPLES=$(CHORUS_FUZZ_EXAMPLES) CHORUS_FUZZ_SECONDS=$(CHORUS_FUZZ_SECONDS) \
	$(RUN) pytest -q -p no:cacheprovider --timeout=$$(( $(CHORUS_FUZZ_SECONDS) + 300 )) tests/e2e/test_fuzz.py

bench: install
	$(RUN) python -m bench $(ARGS)

clean:
	rm -rf $(TOOLS) .venv .mypy_cache .ruff_cache .pytest_cache
