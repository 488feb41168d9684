# newsclf: `make` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXPERIMENT ?= default
PLAN ?= bench/tuning.toml
BENCH_EXPERIMENT ?= cep
TRACKING_URI ?= sqlite:///mlflow.db
PORT ?= 5000
MODEL ?= models:/news-classifier@champion
SERVE_PORT ?= 5001
# Bench results go to reports/bench (gitignored); PUBLISH=1 updates the tracked pages in bench/.
BENCH_OUTPUT = $(if $(PUBLISH),bench,reports/bench)

.DEFAULT_GOAL := help
.PHONY: help install train evaluate audit test test-slow lint format bench tune ui serve bench-scale bench-loop bench-serving bench-speed explain clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/newsclf: pyproject.toml hatch_build.py newsclf/_ngrams.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/newsclf ## create .venv and install the project with its test tools

train: $(BIN)/newsclf ## train and register both classifiers (EXPERIMENT=default, DATA=path optional)
	$(BIN)/newsclf train --experiment $(EXPERIMENT) --tracking-uri $(TRACKING_URI) $(if $(DATA),--data $(DATA))

evaluate: $(BIN)/newsclf ## judge a model (MODEL=champion, DATA=its test split, COMPARE=uri, OUTPUT=dir optional)
	$(BIN)/newsclf evaluate --tracking-uri $(TRACKING_URI) $(if $(MODEL),--model $(MODEL)) $(if $(DATA),--data $(DATA)) $(if $(COMPARE),--compare $(COMPARE)) $(if $(OUTPUT),--output $(OUTPUT))

audit: $(BIN)/newsclf ## flag likely wrong labels with cleanlab (EXPERIMENT=default, DATA=path optional, OUTPUT=reports/audit/<experiment>)
	$(BIN)/newsclf audit --experiment $(EXPERIMENT) --tracking-uri $(TRACKING_URI) --output $(or $(OUTPUT),reports/audit/$(notdir $(basename $(EXPERIMENT)))) $(if $(DATA),--data $(DATA))

test: $(BIN)/newsclf ## run the fast tests (on every core)
	$(BIN)/pytest -q -n auto

test-slow: $(BIN)/newsclf ## run only the slow end-to-end tests (installs the spark extra for the Spark test)
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	$(BIN)/pytest -q -n auto -m slow

lint: $(BIN)/newsclf ## check formatting, lint rules and import order (ruff)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(BIN)/newsclf ## format the code and fix what ruff can fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/newsclf ## ours vs peers on the real data (DATA=../shared/data, BENCH_EXPERIMENT=cep), results in reports/bench/ (PUBLISH=1: bench/)
	@$(BIN)/pip install --quiet -e '.[bench]' || echo "the fastText extra did not install: the bench runs and notes it"
	nice $(BIN)/python -m bench run --data $(or $(DATA),../shared/data) --experiment $(BENCH_EXPERIMENT) --tracking-uri $(TRACKING_URI) --output $(BENCH_OUTPUT)

tune: $(BIN)/newsclf ## staged tuning over rolling-origin CEP folds (DATA=../shared/data, PLAN=bench/tuning.toml), table in reports/bench/ (PUBLISH=1: beside the plan)
	nice $(BIN)/python -m bench tune --data $(or $(DATA),../shared/data) --plan $(PLAN) --output $(if $(PUBLISH),$(basename $(PLAN)).md,reports/bench/$(notdir $(basename $(PLAN))).md) --tracking-uri $(TRACKING_URI)

ui: $(BIN)/newsclf ## open the MLflow UI on the tracking store (PORT=5000)
	$(BIN)/mlflow ui --backend-store-uri $(TRACKING_URI) --host 127.0.0.1 --port $(PORT)

serve: $(BIN)/newsclf ## serve MODEL (default: the champion) on 127.0.0.1, POST /invocations (SERVE_PORT=5001)
	@# A one-line error for a missing model or store, rather than the server's traceback.
	@$(BIN)/newsclf predict --model $(MODEL) --tracking-uri $(TRACKING_URI) < /dev/null > /dev/null
	@# mlflow starts uvicorn by name, so the venv must come first on PATH.
	PATH="$(abspath $(BIN)):$$PATH" MLFLOW_TRACKING_URI=$(TRACKING_URI) $(BIN)/mlflow models serve --model-uri $(MODEL) --env-manager local --host 127.0.0.1 --port $(SERVE_PORT)

bench-scale: $(BIN)/newsclf ## streaming training on 100k / 300k / 1M synthetic CEP articles (DATA=../shared/data), table in reports/bench/scale.md (PUBLISH=1: bench/)
	nice $(BIN)/python -m bench scale --data $(or $(DATA),../shared/data) --output $(BENCH_OUTPUT)/scale.md

bench-loop: $(BIN)/newsclf ## monitor, select, update and gate month by month on CEP from 2015-01 (DATA=../shared/data), loop.md + loop.json in reports/bench/loop (PUBLISH=1: bench/)
	nice $(BIN)/python -m bench loop --data $(or $(DATA),../shared/data)/cep/cep-2010-2017.jsonl --output $(if $(PUBLISH),bench,reports/bench/loop)

bench-speed: $(BIN)/newsclf ## where users wait, against scikit-learn in the same run (DATA=../shared/data), speed.md + speed.json in reports/bench (PUBLISH=1: bench/)
	nice $(BIN)/python -m bench speed --data $(or $(DATA),../shared/data) --output $(BENCH_OUTPUT)

bench-serving: $(BIN)/newsclf ## time MODEL's load, latency and throughput, results in reports/bench/serving.json (PUBLISH=1: bench/)
	$(BIN)/python -m bench serving --model $(MODEL) --tracking-uri $(TRACKING_URI) --output $(BENCH_OUTPUT)

# The article the project started from, beside it (see ../shared/seeds/README.md).
SEED_ARTICLE = $(firstword $(wildcard ../shared/seeds/000_*.txt))
HTML ?= reports/explain.html

explain: $(BIN)/newsclf ## an HTML page of why MODEL labelled FILE (default: the seed article; a .jsonl: one page) in HTML=reports/explain.html
	@mkdir -p $(dir $(HTML))
	$(BIN)/newsclf explain --model $(MODEL) --tracking-uri $(TRACKING_URI) $(if $(filter %.jsonl,$(FILE)),--jsonl) --html $(HTML) $(or $(FILE),$(SEED_ARTICLE),$(error no FILE given and no seed article in ../shared/seeds; pass FILE=path/to/article.txt))

clean: ## delete generated outputs (keeps .venv)
	rm -rf mlruns mlartifacts mlflow.db models reports .pytest_cache
