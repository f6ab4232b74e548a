# Two commands do all set-up: `make demo` and `make test`. Everything goes into .venv.
VENV := .venv
PY := $(VENV)/bin/python
# Where `make demo` serves the site, and the port of its local S3 endpoint.
DEMO_ADDR ?= 127.0.0.1:8000
DEMO_S3_PORT ?= 9000

.PHONY: demo test test-mariadb test-lts test-install lint typecheck docs fix clean bench

# The demo needs only the package and its demo extra; the tests also build the
# MySQL driver, against Debian's libmariadb-dev (installed here when missing).
$(VENV)/.demo-installed: pyproject.toml
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[demo]"
	@touch $@

$(VENV)/.installed: $(VENV)/.demo-installed
	scripts/system-packages libmariadb-dev pkg-config
	$(PY) -m pip install --quiet -e ".[test,demo]"
	@touch $@

# The Procfile's web server and worker side by side; Ctrl-C stops both.
demo: $(VENV)/.demo-installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_user
	@echo "Demo on http://$(DEMO_ADDR)/ (admin: http://$(DEMO_ADDR)/admin/). Ctrl-C stops it."
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" DEMO_ADDR=$(DEMO_ADDR) DEMO_S3_PORT=$(DEMO_S3_PORT) \
		$(VENV)/bin/honcho start

# Every gate: lint, types, Django's checks, migrations in sync, the suite on SQLite,
# PostgreSQL and MariaDB.
test: $(VENV)/.installed lint typecheck
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest
	ATTACHMENTS_TEST_DB=postgres $(PY) -m pytest
	$(MAKE) test-mariadb

# The suite on MariaDB (127.0.0.1:3306, root, no password; .ci/run starts it).
test-mariadb: $(VENV)/.installed
	ATTACHMENTS_TEST_DB=mysql $(PY) -m pytest

# The oldest supported pair, Django 5.2 LTS on Python 3.11, on SQLite.
LTS_VENV := .venv-lts
test-lts:
	@test -x $(LTS_VENV)/bin/python || "$$(scripts/find-python 3.11)" -m venv $(LTS_VENV)
	scripts/system-packages libmariadb-dev pkg-config
	$(LTS_VENV)/bin/python -m pip install --quiet "Django>=5.2,<5.3" -e ".[test]"
	$(LTS_VENV)/bin/python -m pytest -q

# What users install: the built wheel in a fresh virtualenv outside the checkout, in a new
# project made by the README's quick start (on Python 3.12 where there is one, so that CI
# covers 3.11, 3.12 and 3.13).
test-install: $(VENV)/.installed
	$(PY) scripts/check_install.py --python "$$(scripts/find-python 3.12 2>/dev/null || scripts/find-python)"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy --strict with django-stubs on attachments/ (configured in pyproject.toml).
typecheck: $(VENV)/.installed
	$(PY) -m mypy

# The documentation site, warnings as errors; then its doctests. Output in docs/_build/html.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs]"
	@touch $@

docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -E -W --keep-going -q -b html docs docs/_build/html
	$(PY) -m sphinx -E -W --keep-going -q -b doctest docs docs/_build/doctest

fix: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(LTS_VENV) demo_site/db.sqlite3 media/items media-staging media/demo-s3 docs/_build

# --- Task engines: BACKEND="tasks" through RQ, Celery and django-tasks-db workers
# (tests/test_engines.py; part of `make test` too). Needs Redis and RabbitMQ on
# 127.0.0.1, which .ci/run starts.
.PHONY: test-engines
test-engines: $(VENV)/.installed
	$(PY) -m pytest -q tests/test_engines.py tests/test_tasks.py

# --- Benchmarks: each prints its goals as PASS/MISS with ratios measured in the same run.
# The peers they compare against come with the bench extra; the real photos from
# Debian's wallpaper packages (benchmarks/corpus.py). Run on an otherwise idle machine.
$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	scripts/system-packages plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers
	$(PY) -m pip install --quiet -e ".[bench]"
	@touch $@

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/queue.py --quick --no-engines
	$(PY) benchmarks/pickup.py
	$(PY) benchmarks/upload.py --requests 60
	$(PY) benchmarks/upload.py --preview
	$(PY) benchmarks/worker.py
	$(PY) benchmarks/worker.py --preview
	$(PY) benchmarks/worker.py --profile
	$(PY) benchmarks/processing.py --quick
	$(PY) benchmarks/responsive.py --quick
