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
	$(BIN)/alphanas synth examples/specs/synth_downsample.toml --minimize params
	$(BIN)/alphanas search --config examples/search/digits.toml --out runs/demo
	$(BIN)/alphanas runs show runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/ir.py
	$(BIN)/python benchmarks/properties.py
	$(BIN)/alphanas bench synth --out bench-synth.jsonl
	$(BIN)/alphanas bench synth --suite adversarial --synth ours --out bench-adversarial.jsonl
	$(BIN)/python benchmarks/oracle.py
	$(BIN)/python benchmarks/nas_overhead.py
	$(BIN)/alphanas bench nas --suite nb201 --seeds 100 --jobs 2 --out bench-nb201

lint: $(STAMP)
	$(BIN)/ruff check alphanas tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
