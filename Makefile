# Custodian: `make run` starts the site with the offline demo provider; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
SITE_PORT ?= 8000
DEMO_PORT ?= 8001
# The suite runs in parallel (pytest-xdist): each worker has its own test database (pytest-django
# suffixes its name with the worker id), its own demo provider on a free port, its own temp dir.
TEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS)
# DEBUG defaults to off (fail closed); every target here is for development, so it is on for all
# of them, whatever the shell or .env says (`make run DEBUG=false` still overrides it).
export DEBUG := true

# The browser tests drive Debian's chromium (Playwright's own download is not used).
CHROMIUM ?= /usr/bin/chromium
CHROMIUM_HINT := Debian's chromium is missing: run \"sudo apt-get install -y chromium\" (or make setup as root)

.PHONY: setup chromium run test test-sqlite test-postgres test-postgres-logged lint bench clean

# The virtualenv (all that run, lint and bench need) and, for the tests, Debian's chromium.
setup: $(STAMP) chromium

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

# Installs Debian's chromium when it is missing and this user may (root, or sudo without a
# password); on a fresh machine the package lists may be missing too: fetched, then retried.
# When it cannot be installed, setup goes on (the rest of the suite still runs) and the browser
# tests fail with the same one-line hint (tests/browser.py).
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ]; then as_root=""; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; \
		else echo "$(CHROMIUM_HINT)" >&2; exit 0; fi; \
		echo "Installing Debian's chromium for the browser tests"; \
		install="$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"; \
		$$install >/dev/null 2>&1 \
		|| { $$as_root apt-get update -qq >/dev/null && $$install >/dev/null; } \
		|| echo "apt-get could not install Debian's chromium (see above): the browser tests fail until it is installed" >&2; \
	fi

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	@$(PY) -m demo_provider --port $(DEMO_PORT) > .demo_provider.out & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 100); do grep -q listening .demo_provider.out 2>/dev/null && break; \
		kill -0 $$demo 2>/dev/null || { echo "The demo provider did not start (is port $(DEMO_PORT) in use?)" >&2; exit 1; }; \
		sleep 0.2; done; \
	echo; \
	echo "  Custodian:      http://127.0.0.1:$(SITE_PORT)/   (log in with the Demo provider)"; \
	echo "  Demo provider:  http://127.0.0.1:$(DEMO_PORT)/   (users alice, bob, carol; password: demo)"; \
	echo; \
	DEMO_PROVIDER_URL=http://127.0.0.1:$(DEMO_PORT) $(PY) manage.py runserver 127.0.0.1:$(SITE_PORT)

# Both passes at once: on 2 CPUs that takes about a third less wall time than one pass after
# the other (measured; each pass idles while it starts, waits on its loopback servers, and ends
# on its slowest tests). The SQLite pass reports as it goes; the PostgreSQL pass's report follows.
test: setup
	@log=$$(mktemp); \
	$(MAKE) --no-print-directory -j2 test-sqlite test-postgres-logged POSTGRES_LOG="$$log"; \
	status=$$?; cat "$$log"; rm -f "$$log"; exit $$status

test-postgres-logged:
	@$(MAKE) --no-print-directory test-postgres > "$(POSTGRES_LOG)" 2>&1

test-sqlite: $(STAMP)
	$(PYTEST)

# Runs the suite again on PostgreSQL when it is reachable; with CI=true, unreachable fails.
test-postgres: $(STAMP)
	@if $(PY) -c "import psycopg; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL =="; DATABASE_URL=$(PG_URL) $(PYTEST); \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $(PG_URL) is unreachable, and CI needs it" >&2; exit 1; \
	else \
		echo "PostgreSQL at $(PG_URL) is unreachable: skipped the PostgreSQL run"; \
	fi

# ruff and mypy (with django-stubs), both configured in pyproject.toml; zero findings.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/sessions.py

clean:
	rm -rf $(VENV) custodian.sqlite3 test-custodian.sqlite3 .demo_provider.sqlite3 .pytest_cache
