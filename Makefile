# Two entry points: `make demo` and `make test`. Both create .venv and install what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What the tests need from the system, installed with apt where missing (root, or sudo): FFmpeg's shared
# libraries (torchcodec, and the transformers.pipeline test through it) and Chromium (the browser test).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

.PHONY: demo test test-system-deps test-slow bench bench-loader bench-predict bench-train bench-serve bench-export bench-fold bench-workers bench-clips bench-scale bench-pretrain lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vidcls demo

test-system-deps:
	@missing="$$(PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p | grep -q libavformat || echo ffmpeg) $$([ -x /usr/bin/chromium ] || echo chromium)"; \
	if [ -n "$$(echo $$missing)" ]; then \
	  command -v apt-get >/dev/null || { echo "make test: install$$missing (no apt-get here)" >&2; exit 1; }; \
	  $(APT_INSTALL) $$missing >/dev/null || ($(SUDO) apt-get update -qq && $(APT_INSTALL) $$missing >/dev/null); \
	fi

test: $(STAMP) test-system-deps
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -m "not slow" -q

# pytest exits 5 when nothing is marked slow: an empty selection is not a failure.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q || [ $$? -eq 5 ]

# Every CPU benchmark, then one table: ratio to each baseline, target met or not (BENCHMARKS.md, "make bench").
# QUICK=1: each script's smoke mode (a few minutes); PRETRAIN=1: benchmarks/pretrain.py too (about 25 min more).
# Exits non-zero when a benchmark fails. Results and logs: benchmarks/.data/results[-quick]/.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(if $(QUICK),--quick) $(if $(PRETRAIN),--with_pretrain)

# Loader clips/s against the guide's PyTorchVideo loader; builds benchmarks/.guide-venv on first use.
bench-loader: $(STAMP)
	$(BIN)/python benchmarks/loader.py

# vidcls predict videos/s against a loop over transformers.pipeline, and peak memory on a 10-minute video.
bench-predict: $(STAMP)
	$(BIN)/python benchmarks/predict.py --base 3

# Train samples/s against the guide's loader and Trainer at 224 px (and 32 px, loader-bound), 0 and 2 workers.
bench-train: $(STAMP)
	$(BIN)/python benchmarks/train.py

# Load test of vidcls serve on loopback: requests/s, p50/p95 latency, failed requests.
bench-serve: $(STAMP)
	$(BIN)/python benchmarks/serve.py

# CPU latency per clip: onnxruntime fp32 and int8 against PyTorch eager.
bench-export: $(STAMP)
	$(BIN)/python benchmarks/export.py

# Model call per 224 px clip with the normalisation folded into the first layer against a normalising pass.
bench-fold: $(STAMP)
	$(BIN)/python benchmarks/fold.py

# The default workers of predict, evaluate, train and serve against 0 and 2, model-bound and decode-bound.
bench-workers: $(STAMP)
	$(BIN)/python benchmarks/workers.py

# Per-video accuracy and videos/s for each --clips count, on a model trained on the motion data.
bench-clips: $(STAMP)
	$(BIN)/python benchmarks/clips.py

# One process against --engine ray, and what a cluster would do on 1 M videos.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

# Few labels: from scratch against vidcls pretrain first, and the linear probe (about 25 min).
bench-pretrain: $(STAMP)
	$(BIN)/python benchmarks/pretrain.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs data/demo
