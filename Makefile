# Two commands on a fresh machine with only Python 3.11:
#   make run    set everything up, then run the main job
#   make test   set everything up, then run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/yelp
OUT    ?= runs/compare
MODELS ?= linear,scratch,minilm
BUDGET ?= 10m

.PHONY: run quick test setup clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml $(BIN)/activate
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# The main job: the lesson's ladder on the same data, leaderboard + report (~40 min on 2 CPU cores;
# a re-run with the same settings reuses the trained models and takes seconds).
run: setup
	$(BIN)/reviewstars compare --data $(DATA) --output $(OUT) --models $(MODELS) --time-budget $(BUDGET)

# One minute: the linear baseline alone.
quick: setup
	$(BIN)/reviewstars train --model linear --data $(DATA) --output runs/quick/linear
	$(BIN)/reviewstars evaluate --model runs/quick/linear --data $(DATA) --split validation --output runs/quick/linear-metrics.json

# The suite in TEST_WORKERS processes (pytest-xdist), each test file whole in one of them (its
# session fixtures built once a worker): 8-9 minutes on 2 cores (470-525 s), where one process took 15.5-17.
TEST_WORKERS ?= 2
test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) runs
