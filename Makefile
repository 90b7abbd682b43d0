# Two commands on a fresh machine with only Python 3.11:
#   make run    set everything up, then run the main job
#   make test   set everything up, then run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/yelp
OUT    ?= runs/quickstart

.PHONY: run test setup clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml $(BIN)/activate
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/reviewstars train --model linear --data $(DATA) --output $(OUT)/linear
	$(BIN)/reviewstars evaluate --model $(OUT)/linear --data $(DATA) --split validation --output $(OUT)/linear-metrics.json

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
