# The two set-up commands of the README. Each creates/updates .venv and installs what it needs.
PY ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip==25.3
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: demo test lint
demo: $(STAMP)
	$(VENV)/bin/smabm demo

test: $(STAMP)
	(command -v chromium && command -v chromedriver && ls /usr/lib/postgresql/*/bin/initdb) >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq postgresql chromium chromium-driver >/dev/null)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
