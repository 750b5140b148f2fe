# genofed's two entry points: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := plink2 postgresql
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test install install-test system-packages lint

demo: install
	$(BIN)/genofed demo --force

test: install-test system-packages
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

install: $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"

system-packages:
	@for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
