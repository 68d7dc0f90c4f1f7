# syncd: developer and CI entry points. `make test` is exactly what CI runs (.ci/run).
# GNU make; works on a fresh Debian machine as root or as a user with sudo.

.DEFAULT_GOAL := test
.PHONY: test lint run bench soak system-deps clean distclean

VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

# $(call apt_install,PACKAGES): as root directly, otherwise through sudo; without either,
# say what to install and fail rather than run the tests half-equipped.
define apt_install
if ! command -v apt-get >/dev/null 2>&1; then \
  echo "Please install: $(1) (no apt-get here)" >&2; exit 1; \
elif [ "$$(id -u)" -eq 0 ]; then sudo=""; \
elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
else \
  echo "Please install, as root: apt-get update && apt-get install -y $(1)" >&2; exit 1; \
fi; \
$$sudo apt-get update && \
$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $(1)
endef

define lint_steps
$(BIN)/ruff check .
$(BIN)/ruff format --check .
$(BIN)/mypy
endef

# The stamp makes edits to pyproject.toml (new dependencies) re-install on the next run.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "Installing python3-venv to create $(VENV)"; \
	  $(call apt_install,python3-venv); }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

# The integration tests start a real sshd and PostgreSQL; their binaries must be installed
# (the servers themselves are never started as system services by the tests). The browser
# tests drive Debian's chromium through Playwright (never `playwright install`).
system-deps:
	@missing=""; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	{ command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 \
	  || ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
	  || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing for the integration and browser tests"; \
	  $(call apt_install,$$missing); \
	fi

# Four workers on two cores: much of the suite waits on servers and subprocesses. Tests
# go to whichever worker is free, except those sharing a module- or class-wide fixture
# (tests/conftest.py groups them on one worker, which sets it up once). The slowest
# tests are listed at the end, to keep the run under 15 minutes.
test: $(VENV)/.installed system-deps
	$(lint_steps)
	$(BIN)/pytest -n 4 --dist loadgroup --durations=25

lint: $(VENV)/.installed
	$(lint_steps)

# The back office too, on the loopback address only (`syncd web user add` makes an account).
WEB_LISTEN := 127.0.0.1:8080

run: $(VENV)/.installed
	@echo "The back office: http://$(WEB_LISTEN)/ (first account: $(BIN)/syncd web user add NAME --role admin)"
	$(BIN)/syncd run --web $(WEB_LISTEN)

# The load run (tests/soak): two daemons, three sources, 500 files, outages; about half
# an hour. SYNCD_SOAK_FILES=30 for a quick one. Figures go to var/soak/.
soak: $(VENV)/.installed system-deps
	$(BIN)/pytest -m soak -s tests/soak

bench: $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[test,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# clean, and the venv too (the next target that needs it rebuilds it).
distclean: clean
	rm -rf $(VENV)
