# The two commands a user needs: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test browser lint typecheck unit crosshair prove bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wormspace demo --seed 1

test: $(STAMP) browser lint typecheck unit crosshair prove

browser:
	bash .ci/install-browser

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q

crosshair: $(STAMP)
	$(BIN)/python -m wormspace.proofs.crosshair_runner

# Every proof obligation in its quick bounds. The apps' obligations stay "unknown" until their checkers
# land: --allow-unknown apps tolerates exactly that (printed in the output), never a counterexample.
prove: $(STAMP)
	$(BIN)/wormspace prove --quick --allow-unknown apps

bench: $(STAMP)
	WORMSPACE_CONTRACTS=0 $(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache .hypothesis
