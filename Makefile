# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test lint faults bench clean browser-deps

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ledger.dev.demo

test: lint browser-deps
	$(PY) -m pytest

# The rules and their exceptions are in pyproject.toml ([tool.ruff.lint]); ruff is pinned in the test extra.
lint: $(STAMP)
	$(PY) -m ruff check

# The browser tests drive Debian's chromium + chromium-driver. Installed when missing and apt-get can
# run (root, or password-less sudo); otherwise say what to install (those tests then skip, saying why).
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else \
		echo "note: the browser tests will be skipped: install Chromium and its WebDriver" \
		     "(Debian/Ubuntu: apt-get install chromium chromium-driver)"; \
	fi

# The long fault suite; prints the table (also in build/faults/table-long.md, see RELIABILITY.md).
faults: $(STAMP)
	LEDGER_FAULTS=long $(PY) -m pytest tests/faults -v

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
