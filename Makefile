# Set-up from nothing on a Linux machine with python3 and make: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# setuptools' editable install warns that a folder named like the package may shadow it on
# import: here that folder is the package itself, as intended, so the warning is filtered out.
PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip
# A pip.conf may name local package indexes (file:///...) that hold only some packages (this
# project's build machine has two): pip then warns once for every other package it installs,
# "WARNING: Location 'file:///...' is ignored: it is neither a file nor a directory." Those lines
# alone are dropped from pip's stderr, which is shown when pip ends; everything else pip writes,
# its errors included, and its exit status are kept. `@$(call pip_install,ARGS)` shows the
# command as `pip install ARGS`, not this filter around it.
PIP_IGNORED := ^WARNING: Location 'file:[^']*' is ignored: it is neither a file nor a directory\.$$
# Extras as variables: a comma written inside $(call ...) would split its argument in two.
TEST_EXTRAS := -e '.[test,torch]'
PLOT_EXTRAS := -e '.[plot]'
pip_install = echo "pip install $(1)"; log=$$(mktemp) && { $(PIP) install --quiet $(1) 2>"$$log"; status=$$?; \
	grep -v "$(PIP_IGNORED)" "$$log" >&2; rm -f "$$log"; exit $$status; }

.PHONY: demo train test lint typecheck pytest dot chromium clean bench viz

# The stamp files re-run pip whenever pyproject.toml changes: .stamp-test follows .stamp-base,
# which follows pyproject.toml, so the test extra is reinstalled after the base.
$(VENV)/.stamp-base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@$(call pip_install,--upgrade pip)
	@$(call pip_install,-e .)
	touch $@

# The torch extra (torch==2.13.0, a local CPU wheel here) so that tinygrad_edu.pytorch is tested.
$(VENV)/.stamp-test: $(VENV)/.stamp-base
	@$(call pip_install,$(TEST_EXTRAS))
	touch $@

demo: $(VENV)/.stamp-base
	$(BIN)/python -m tinygrad_edu article

# micrograd's moons demo with its loss curve and decision boundary (matplotlib: the plot extra).
$(VENV)/.stamp-plot: $(VENV)/.stamp-base
	@$(call pip_install,$(PLOT_EXTRAS))
	touch $@

train: $(VENV)/.stamp-plot
	$(BIN)/python -m tinygrad_edu train

# Graphviz's `dot` executable renders graphs. Installed with apt-get when missing and root;
# otherwise stop and say how (a missing `dot` is never a skipped test, with or without CI).
dot:
	@if command -v dot >/dev/null 2>&1; then \
		echo "graphviz: $$(dot -V 2>&1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "graphviz: installing with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
		command -v dot >/dev/null 2>&1 || { echo "error: graphviz install did not provide 'dot'"; exit 1; }; \
	else \
		echo "error: the Graphviz 'dot' executable is missing."; \
		echo "Install it, e.g. 'sudo apt-get install -y graphviz' (Debian/Ubuntu),"; \
		echo "'brew install graphviz' (macOS), then run 'make test' again."; \
		exit 1; \
	fi

# Debian's Chromium and its driver run the step-through page's browser test (Selenium is pointed
# at /usr/bin/chromedriver: nothing downloads a browser). Installed as Graphviz is; a missing
# browser is a failing test, never a skipped one.
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "chromium: installing chromium and chromium-driver with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		[ -x /usr/bin/chromedriver ] || { echo "error: the install did not provide /usr/bin/chromedriver"; exit 1; }; \
	else \
		echo "error: Chromium for the browser test is missing."; \
		echo "Install it, e.g. 'sudo apt-get install -y chromium chromium-driver' (Debian/Ubuntu),"; \
		echo "then run 'make test' again."; \
		exit 1; \
	fi

# The gallery of rendered graphs (viz/README.md); tests/test_gallery.py checks it is current.
viz: $(VENV)/.stamp-test dot chromium
	$(BIN)/python viz/gallery.py

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check tinygrad_edu tests $(wildcard bench viz examples)
	$(BIN)/ruff format --check tinygrad_edu tests $(wildcard bench viz examples)

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy --strict tinygrad_edu

pytest: $(VENV)/.stamp-test dot chromium
	$(BIN)/python -m pytest

test: lint typecheck pytest

# Issue 5's benchmark: tinygrad_edu beside micrograd (test extra) and PyTorch CPU, whose pinned
# torch==2.13.0 is a local CPU wheel here (never a range: that could pull a multi-GB CUDA build).
# Without it the bench runs on the other engines and says so. Writes bench/RESULTS.md.
bench: $(VENV)/.stamp-test
	@($(call pip_install,torch==2.13.0)) \
		|| echo "bench: torch==2.13.0 could not be installed; running without PyTorch"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
