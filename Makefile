PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/alphanas show cifar_cnn
	$(BIN)/alphanas verify cifar_cnn --spec examples/specs/cifar_cnn.toml
	$(BIN)/alphanas synth examples/specs/synth_downsample.toml --minimize params

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/ir.py
	$(BIN)/python benchmarks/properties.py
	$(BIN)/alphanas bench synth --out bench-synth.jsonl

lint: $(STAMP)
	$(BIN)/ruff check alphanas tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
