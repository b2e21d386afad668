# Two entry points: `make demo` and `make test`. Both create .venv and install what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench-loader bench-predict bench-train lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vidcls demo

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

# Loader clips/s against the guide's PyTorchVideo loader; builds benchmarks/.guide-venv on first use.
bench-loader: $(STAMP)
	$(BIN)/python benchmarks/loader.py

# vidcls predict videos/s against a loop over transformers.pipeline, and peak memory on a 10-minute video.
bench-predict: $(STAMP)
	$(BIN)/python benchmarks/predict.py

bench-train: $(STAMP)
	$(BIN)/python benchmarks/train.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs data/demo
