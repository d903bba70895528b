# Two entry points: `make demo` (the Fashion-MNIST demo) and `make test` (the whole test suite); `make lint`
# checks the code. All create the virtual environment .venv and install kdzoo into it on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kdzoo-installed

.PHONY: demo test test-quick lint data docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

data:
	@sh scripts/fashion_mnist.sh

demo: $(STAMP) data
	$(BIN)/kdzoo demo

test: $(STAMP) data
	$(BIN)/python -m pytest -n auto

# ruff over the whole repository (settings: [tool.ruff] in pyproject.toml); ruff comes with the test extra.
lint: $(STAMP)
	$(BIN)/ruff --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/ruff check .

# While developing: the suite without its end-to-end runs (tests marked slow: real kdzoo runs, torchrun jobs).
test-quick: $(STAMP)
	$(BIN)/python -m pytest -n auto -m "not slow"

# Every generated page, from the code and the committed runs: the method pages and their index, the support table,
# the method counts of the front pages and tutorials, the tour's and the Chinese methods page's parts for methods
# not yet written up by hand, the results page and the READMEs' excerpts. No training: the tutorial's outputs
# (python -m kdzoo.docgen.tutorial) and the results grid (kdzoo bench) are rerun by hand.
docs: $(STAMP)
	$(BIN)/python -m kdzoo.docgen.methods
	$(BIN)/python -m kdzoo.docgen.support
	$(BIN)/python -m kdzoo.docgen.counts
	$(BIN)/python -m kdzoo.docgen.tour
	$(BIN)/python -m kdzoo.docgen.zh_methods
	$(BIN)/python -m kdzoo.docgen.results

clean:
	rm -rf $(VENV) runs
