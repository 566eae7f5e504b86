# The two commands a user needs: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test browser lint typecheck unit crosshair prove bench bench-quick clean

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

# Every proof obligation in its quick bounds, and the composition of the chain; exit 0 only when every
# obligation is checked and the chain is closed.
prove: $(STAMP)
	$(BIN)/wormspace prove --quick

# Every benchmark, contracts off; results to docs/bench-results.json, plots to docs/img/, tables into
# docs/performance.md. etcd (the peer of WormKV) is installed from Debian when run as root with apt;
# otherwise that comparison prints a skip.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	@command -v etcd >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server etcd-client >/dev/null; } || \
		echo "etcd not installed: the WormKV vs etcd comparison will be skipped"
	WORMSPACE_CONTRACTS=0 $(BIN)/python -m bench --save docs/bench-results.json
	$(BIN)/python -m bench.plots docs/bench-results.json --out docs/img
	$(BIN)/python -m bench.report docs/bench-results.json --update docs/performance.md

bench-quick: $(STAMP)
	WORMSPACE_CONTRACTS=0 $(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache .hypothesis
