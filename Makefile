# Two entry points: `make demo` (the Fashion-MNIST demo) and `make test` (the whole test suite); `make lint`
# checks the code. All create the virtual environment .venv and install kdzoo into it on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kdzoo-installed

.PHONY: demo test test-quick lint data clean

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

clean:
	rm -rf $(VENV) runs
