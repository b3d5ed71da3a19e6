# mrpc_finetune: make setup, make test, make train (MRPC from the Hub), make train ARGS="data.dir=DIR" (local files)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RECIPE ?= mrpc_minilm
ARGS   ?=
NPROC  ?= 2
RUN    ?= runs/$(RECIPE)
RUNS   ?= runs
TENSORBOARD_PORT ?= 6006
# Real MRPC for tests and benchmarks (the folder of its train.jsonl): env MRPC_DATA or DATA=..., relative to this
# folder. No default: without it make test / test-all skip the tests that need it (fail them under CI=true) and
# make bench stops.
MRPC_DATA ?=
DATA   ?= $(MRPC_DATA)
PASS_DATA = $(if $(DATA),MRPC_DATA=$(DATA))
# Checked when the Makefile is read, so that make -n bench stops too.
ifeq ($(strip $(DATA)),)
ifneq ($(filter bench gpu-check,$(MAKECMDGOALS)),)
$(error make $(filter bench gpu-check,$(MAKECMDGOALS)) needs real MRPC: set MRPC_DATA or pass DATA=DIR, the folder of its train.jsonl and validation.jsonl)
endif
endif
LOCK   ?= requirements.lock
TORCH_VERSION ?= 2.13.0
# make wheelhouse: the machine that will install it (default: this one), and whether torch goes in too.
WHEELHOUSE ?= wheelhouse
TARGET_PYTHON ?=
TARGET_PLATFORM ?=
WITH_TORCH ?= 0
OFFLINE_PIP = $(BIN)/python -m pip install --no-index --find-links $(WHEELHOUSE)
TORCH_PIN = from importlib.metadata import version; print('torch==' + version('torch'))

.PHONY: setup lock wheelhouse setup-offline gpu-wheels gpu-check test test-all golden quality format train train-loop train-accelerate eval predict tensorboard mlflow bench clean

setup:  ## .venv with the exact versions of requirements.lock (torch included), then this project editable
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: make setup needs Python 3.11+ ($(PYTHON) is $$($(PYTHON) -V 2>&1)): the versions $(LOCK) pins require it; pass PYTHON=python3.11 or newer" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	@$(BIN)/python -m pip check >&2 || { echo "error: unmet requirements (above); if mrpc-finetune's, $(LOCK) is older than pyproject.toml: run make lock" >&2; exit 1; }

# pyproject.toml keeps the loose ranges; the lock is what one fresh install of them resolved to, in a throwaway
# venv (.venv is never touched). torch's local label (+cpu, +cu128) is dropped so that the pin resolves on any index,
# and a CUDA build's runtime packages (nvidia-*, triton) are left out: that torch wheel pins them exactly itself, and
# without them the lock installs on CPU-only machines too.
lock:  ## refresh requirements.lock: a fresh install of pyproject.toml's ranges, frozen
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp" build' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install -q torch==$(TORCH_VERSION); \
	"$$tmp/venv/bin/python" -m pip install -q ".[dev]"; \
	{ echo "# make lock: pyproject.toml's ranges, fresh install, pip freeze ($$("$$tmp/venv/bin/python" -c 'import platform; print("Python", platform.python_version(), platform.system(), platform.machine())'))"; \
	  echo "# torch was the $$("$$tmp/venv/bin/python" -c 'import torch; print("CUDA " + torch.version.cuda if torch.version.cuda else "CPU")') build here: its local label and CUDA runtime packages are left out, so the pin resolves on any index. Used by make setup."; \
	  "$$tmp/venv/bin/python" -m pip freeze --exclude mrpc-finetune | sed -E 's/^(torch==[^+]+)[+].*/\1/' | grep -Ev '^(nvidia-|triton==)'; } > "$$tmp/lock"; \
	mv "$$tmp/lock" $(LOCK); echo "wrote $(LOCK): $$(grep -c '==' $(LOCK)) pins"

wheelhouse:  ## on a connected machine: wheels for make setup-offline (TARGET_PYTHON=3.12 TARGET_PLATFORM=manylinux_2_28_x86_64, WITH_TORCH=1)
	$(PYTHON) tools/wheelhouse.py --dest $(WHEELHOUSE) --lock $(LOCK) --torch-version $(TORCH_VERSION) \
	    $(if $(TARGET_PYTHON),--python-version $(TARGET_PYTHON)) $(if $(TARGET_PLATFORM),--platform $(TARGET_PLATFORM)) \
	    $(if $(filter 1,$(WITH_TORCH)),--with-torch)

# No index: only wheelhouse/. An existing .venv is kept; a new one sees the system's packages (a GPU server's
# CUDA torch). The torch already there is pinned as a constraint, so pip can use it but never replace it.
setup-offline:  ## install from wheelhouse/ with no network into .venv, keeping its torch
	@test -d $(WHEELHOUSE) || { echo "error: no $(WHEELHOUSE)/ here: run make wheelhouse on a connected machine and copy it in" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	@if $(BIN)/python -c "$(TORCH_PIN)" > $(VENV)/torch-pin.txt 2> /dev/null; then echo "keeping $$(cat $(VENV)/torch-pin.txt)"; \
	elif ls $(WHEELHOUSE)/torch-*.whl > /dev/null 2>&1; then : > $(VENV)/torch-pin.txt; echo "no torch yet: $(WHEELHOUSE)/ brings one"; \
	else echo "error: no torch in $(VENV) (nor in the system's packages) nor in $(WHEELHOUSE)/: install your torch build first, or make wheelhouse WITH_TORCH=1" >&2; exit 2; fi
	$(OFFLINE_PIP) -q -c $(VENV)/torch-pin.txt -e ".[dev]"
	@pin=$$(cat $(VENV)/torch-pin.txt); now=$$($(BIN)/python -c "$(TORCH_PIN)"); \
	if [ -n "$$pin" ] && [ "$$pin" != "$$now" ]; then echo "error: torch changed from $$pin to $$now" >&2; exit 1; fi; echo "installed; $$now"

# The GPU proof (docs/gpu.md): env, tests, loops, bench in about 8 minutes, one report in $(GPU_CHECK_OUT)/.
# PART=env|tests|loops|bench runs one part. No CUDA GPU: one line, exit 2. GPU_PYTHON: .venv's, else python3.
GPU_CHECK_OUT ?= gpu-check
GPU_WHEELS ?= gpu-wheels
PART ?= all
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-check:  ## on a CUDA machine: tests, the three loops and bench --gpu, one report (GPU_CHECK_OUT, PART=...)
	$(GPU_PYTHON) tools/gpu_check.py --out $(GPU_CHECK_OUT) --data $(DATA) --part $(PART) $(GPU_CHECK_ARGS)

gpu-wheels:  ## on a connected machine: the few wheels a GPU server with its own torch/transformers lacks (docs/gpu.md)
	$(PYTHON) tools/gpu_wheels.py --dest $(GPU_WHEELS) --lock $(LOCK) \
	    $(if $(TARGET_PYTHON),--python-version $(TARGET_PYTHON)) $(if $(TARGET_PLATFORM),--platform $(TARGET_PLATFORM))

test:  ## the fast suite (CPU, under 3 minutes); real-data tests only with MRPC_DATA / DATA set
	$(PASS_DATA) $(BIN)/python -m pytest -q -m "not slow" --durations=15

test-all:  ## everything, the slow tests too: the full mrpc_minilm recipe on real MRPC, multi-process, kill/resume, servers, the offline install
	$(PASS_DATA) $(BIN)/python -m pytest -q

golden:  ## rewrite tests/golden/*.json on purpose, printing stored and new values side by side (then commit with the reason)
	$(PASS_DATA) $(BIN)/python -m pytest -q -s tests/test_golden.py --update-golden

quality:
	$(BIN)/ruff check mrpc_finetune recipes tests bench tools
	$(BIN)/ruff format --check mrpc_finetune recipes tests bench tools

format:
	$(BIN)/ruff check --fix mrpc_finetune recipes tests bench tools
	$(BIN)/ruff format mrpc_finetune recipes tests bench tools

train:  ## Trainer loop; mixed precision on GPU (bf16/fp16 from the hardware), fp32 on CPU
	$(BIN)/mrpc-finetune train $(RECIPE) $(ARGS)

train-loop:  ## the plain PyTorch loop
	$(BIN)/mrpc-finetune train $(RECIPE) loop=torch $(ARGS)

# --multi_gpu picks Accelerate's torchrun launcher, which also starts NPROC gloo processes on a machine without
# GPUs (the loop then runs on CPU); `--cpu --num_processes N` would start a single process unless mpirun is set up.
train-accelerate:  ## the Accelerate loop on NPROC processes (one per GPU; gloo processes on CPU)
	$(BIN)/accelerate launch --num_processes $(NPROC) --num_machines 1 $(if $(filter 1,$(NPROC)),,--multi_gpu) -m mrpc_finetune train $(RECIPE) loop=accelerate $(ARGS)

eval:  ## evaluate a finished run: make eval RUN=runs/mrpc_minilm
	$(BIN)/mrpc-finetune eval $(RUN)

predict:  ## predict a file's rows with a finished run: make predict RUN=runs/reviews FILE=new.csv
	$(BIN)/mrpc-finetune predict $(RUN) --file $(FILE)

tensorboard:  ## serve every run's curves on http://localhost:6006 (RUNS=folder, TENSORBOARD_PORT=port)
	$(BIN)/tensorboard --logdir $(RUNS) --port $(TENSORBOARD_PORT)

mlflow:  ## serve the runs logged with train.report_to=[...,mlflow] (./mlflow.db) on http://localhost:5000
	$(BIN)/mlflow ui --port 5000

bench:  ## padding/throughput/MFU benchmark on real MRPC, DATA=DIR or env MRPC_DATA (see docs/benchmarks.md)
	$(BIN)/python bench/bench.py --data $(DATA) --steps 60 --repeats 2

# Expected scores on GLUE tasks beside MRPC (docs/benchmarks.md, "GLUE tasks"): GLUE_DATA=DIR holds cola/ sst2/
# stsb/ rte/ wnli/, each {train,validation}.jsonl. GLUE_SEEDS seeds per task, SST-2 one (67k rows); finished seeds
# are kept on a rerun. The table: GLUE_EXP/glue_table.md.
GLUE_DATA  ?=
GLUE_EXP   ?= runs/glue
GLUE_TASKS ?= wnli rte cola stsb sst2
GLUE_SEEDS ?= 3
.PHONY: glue
glue:  ## repeat each *_minilm GLUE recipe over GLUE_SEEDS seeds (SST-2: 1) and print one table: make glue GLUE_DATA=DIR
	@test -n "$(GLUE_DATA)" || { echo "error: make glue needs GLUE_DATA=DIR, the folder of cola/ sst2/ stsb/ rte/ wnli/" >&2; exit 2; }
	@set -e; for task in $(GLUE_TASKS); do seeds=$(GLUE_SEEDS); [ $$task != sst2 ] || seeds=1; \
	  $(BIN)/mrpc-finetune repeat $${task}_minilm --seeds $$seeds --output-dir $(GLUE_EXP)/$$task data.dir=$(abspath $(GLUE_DATA))/$$task; done
	$(BIN)/python tools/glue_table.py $(GLUE_EXP) --data $(GLUE_DATA)

# The light search that chose each *_minilm GLUE recipe's settings (docs/benchmarks.md, "The light search per
# task"): the task's train split carved 90/10 by tools/heldout_folder.py (SST-2: 97/3, its carve is big enough), then
# GLUE_TRIALS points of the recipe's SEARCH space, each trained to its last step and scored on the carve: the
# recipe's own point (--recipe-first) and the rest drawn by Optuna's TPE. SST-2: GLUE_SST2_TRIALS points of
# GLUE_SST2_STEPS steps each, not the recipe's full epoch (20 minutes a point here).
GLUE_TRIALS ?= 5
GLUE_SST2_TRIALS ?= 4
GLUE_SST2_STEPS ?= 400
.PHONY: glue-search
glue-search:  ## search each *_minilm GLUE recipe's SEARCH space on a carve of train: make glue-search GLUE_DATA=DIR
	@test -n "$(GLUE_DATA)" || { echo "error: make glue-search needs GLUE_DATA=DIR, the folder of cola/ sst2/ stsb/ rte/ wnli/" >&2; exit 2; }
	@set -e; for task in $(GLUE_TASKS); do carve=0.1; trials=$(GLUE_TRIALS); steps=; \
	  [ $$task != sst2 ] || { carve=0.03; trials=$(GLUE_SST2_TRIALS); steps=train.max_steps=$(GLUE_SST2_STEPS); }; \
	  [ -d $(GLUE_EXP)/search/$$task-data ] || $(BIN)/python tools/heldout_folder.py $(abspath $(GLUE_DATA))/$$task \
	    $(GLUE_EXP)/search/$$task-data --task $$task --fraction $$carve; \
	  $(BIN)/mrpc-finetune search $${task}_minilm --trials $$trials --no-prune --recipe-first --output-dir $(GLUE_EXP)/search/$$task \
	    data.dir=$(abspath $(GLUE_EXP))/search/$$task-data $$steps; done

# The STS-B -> MRPC chain (docs/recipes.md, "An intermediate task: STS-B, then MRPC"): stsb_minilm_msrfree on
# GLUE_DATA/stsb (MSRpar pairs dropped), then mrpc_minilm_stsb from its model on DATA (the Hub's MRPC without it).
# Both runs under CHAIN_RUNS; ARGS reach both (e.g. ARGS="seed=3").
CHAIN_RUNS ?= runs
.PHONY: chain
chain:  ## train stsb_minilm_msrfree, then mrpc_minilm_stsb from its model: make chain GLUE_DATA=DIR DATA=DIR
	@test -n "$(GLUE_DATA)" || { echo "error: make chain needs GLUE_DATA=DIR, the folder of stsb/ (train.jsonl, validation.jsonl)" >&2; exit 2; }
	$(BIN)/mrpc-finetune train stsb_minilm_msrfree data.dir=$(GLUE_DATA)/stsb output_dir=$(CHAIN_RUNS)/stsb_minilm_msrfree $(ARGS)
	$(BIN)/mrpc-finetune train mrpc_minilm_stsb $(if $(DATA),data.dir=$(DATA)) model.name=$(CHAIN_RUNS)/stsb_minilm_msrfree/model \
	    output_dir=$(CHAIN_RUNS)/mrpc_minilm_stsb $(ARGS)

clean:  ## build and test leftovers; never runs/ (trained models) nor wheelhouse/
	rm -rf bench/out build .pytest_cache .ruff_cache
