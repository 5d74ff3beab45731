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

.PHONY: setup run test test-sqlite test-postgres test-postgres-logged lint bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

run: setup
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

test-sqlite: setup
	$(PYTEST)

# Runs the suite again on PostgreSQL when it is reachable; with CI=true, unreachable fails.
test-postgres: setup
	@if $(PY) -c "import psycopg; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL =="; DATABASE_URL=$(PG_URL) $(PYTEST); \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $(PG_URL) is unreachable, and CI needs it" >&2; exit 1; \
	else \
		echo "PostgreSQL at $(PG_URL) is unreachable: skipped the PostgreSQL run"; \
	fi

# ruff and mypy (with django-stubs), both configured in pyproject.toml; zero findings.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/sessions.py

clean:
	rm -rf $(VENV) custodian.sqlite3 test-custodian.sqlite3 .demo_provider.sqlite3 .pytest_cache
