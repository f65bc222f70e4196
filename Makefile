# Two commands for a newcomer: `make train` (the main job) and `make test-all` (the whole test
# suite, what CI runs); `make test` is the fast loop for development (everything except the
# tests marked slow, under 3 minutes on 2 cores). All create .venv and install everything on
# first use; later runs reuse it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
BACKEND ?= torch
ARGS   ?=

.PHONY: install train test test-all lint clean

install: $(STAMP)

# torch first, pinned, so pip takes the CPU build instead of a multi-GB CUDA one.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/convspec train specs/mnist.yaml --backend $(BACKEND) $(ARGS)

# the fast loop: everything but the tests marked slow (training runs, torchrun, examples, fuzz)
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

# the whole suite, slow tests included: what CI runs
test-all: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check convspec tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache
