# vitbench: `make compare` runs the main job, `make test` the tests; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vitbench-installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup lock data browser train teacher quickstart-cnn compare generate study deit-table deit-long deit-soft test test-slow lint clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) data  ## Create .venv, install vitbench[dev], install Fashion-MNIST (idempotent)

# constraints.txt holds the versions the suite last passed with (make lock writes it from the tested
# venv), so a fresh machine installs what was tested; `pip install -e .` alone takes the newest releases.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

lock:  ## Refresh constraints.txt from the venv (after `make test` passed with newer versions)
	@{ echo "# The versions \`make test\` last passed with (written by \`make lock\` on $$(date +%F), Python $$($(BIN)/python -c 'import platform; print(platform.python_version())'))."; \
	  $(BIN)/python -m pip freeze --exclude-editable --exclude vitbench; } > constraints.txt

data:  ## Install Debian's dataset-fashion-mnist where apt is there (else use data.download=true)
	@if [ -f $(FMNIST) ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	else echo "no apt here: run with data.download=true or set VITBENCH_DATA to a folder with Fashion-MNIST"; fi

train: setup  ## Train one run: make train ARGS="model=swin seed=1"
	$(BIN)/vitbench-train $(ARGS)

TEACHER := teachers/fashion_mnist-cnn.ckpt
teacher: setup  ## Train DeiT's CNN teacher for Fashion-MNIST once (reused when present)
	@if [ -f $(TEACHER) ]; then echo "teacher: reusing $(TEACHER) (delete it to retrain)"; \
	else $(BIN)/vitbench-train experiment=teacher hydra.run.dir=teachers/fashion_mnist-run $(ARGS); fi

# The quickstart's CNN: DeiT's teacher in `make compare`, the FID feature network in `make generate`.
quickstart-cnn: setup
	@if [ -f teachers/quickstart/fashion_mnist-cnn.ckpt ]; then echo "CNN: reusing teachers/quickstart"; \
	else $(BIN)/vitbench-train experiment=quickstart model=cnn hydra.run.dir=teachers/quickstart/run \
		export_checkpoint=teachers/quickstart/fashion_mnist-cnn.ckpt; fi

NOW := $(shell date +%Y-%m-%d_%H-%M-%S)
QUICKSTART := multirun/quickstart/$(NOW)
compare: quickstart-cnn  ## The main job: CNN teacher, then ViT, DeiT, Swin, EfficientViT; prints the table
	$(BIN)/vitbench-train -m experiment=quickstart paths.teacher_dir=teachers/quickstart \
		model=vit,deit,swin,efficientvit hydra.sweep.dir=$(QUICKSTART) $(ARGS)
	@# The teacher's W&B run beside the sweep's, for `wandb leet $(QUICKSTART)/wandb`.
	@$(BIN)/python -c "from pathlib import Path; from vitbench.run.dashboard import link_wandb_runs; \
		link_wandb_runs(Path('$(QUICKSTART)/wandb'), Path('teachers/quickstart/run'))"
	$(BIN)/vitbench-compare teachers/quickstart/run $(QUICKSTART) --out $(QUICKSTART)/report

GENERATE := multirun/generate/$(NOW)
generate: quickstart-cnn  ## Denoising: JiT and DiT on Fashion-MNIST, samples, FID in the CNN's features; the table
	$(BIN)/vitbench-train -m experiment=generate paths.teacher_dir=teachers/quickstart \
		model=jit,dit hydra.sweep.dir=$(GENERATE) $(ARGS)
	$(BIN)/vitbench-compare $(GENERATE) --out $(GENERATE)/report

# Resumable: run `make study` again after an interrupt (same STUDY) and it skips the finished jobs,
# resumes the interrupted one from its checkpoint and runs the rest.
STUDY ?= multirun/data_efficiency
STUDY_EXPERIMENT ?= data_efficiency
study: setup  ## Does a ViT need more data than a CNN? 5 variants x 5 training-set sizes x 2 seeds; resumable
	@# The CNNs first: each is also the teacher of the DeiT of its size and seed.
	$(BIN)/vitbench-train -m experiment=$(STUDY_EXPERIMENT) model=cnn ckpt_path=last \
		'paths.teacher_dir=$(abspath $(STUDY))/teachers/n$${data.train_subset}-s$${seed}' \
		'export_checkpoint=$${paths.teacher_dir}/$${dataset_name}-cnn.ckpt' hydra.sweep.dir=$(STUDY)/cnn $(ARGS)
	$(BIN)/vitbench-train -m experiment=$(STUDY_EXPERIMENT) model=vit,deit,swin,efficientvit ckpt_path=last \
		'paths.teacher_dir=$(abspath $(STUDY))/teachers/n$${data.train_subset}-s$${seed}' \
		hydra.sweep.dir=$(STUDY)/transformers $(ARGS)
	$(BIN)/vitbench-compare $(STUDY)/cnn $(STUDY)/transformers --out $(STUDY)/report

DEIT ?= multirun/deit_table
DEIT_SEEDS ?= 0,1,2
deit-table: teacher  ## DeiT against ViT at the CPU default: distillation none/soft/hard, 3 seeds (~50 min); resumable
	$(BIN)/vitbench-train -m seed=$(DEIT_SEEDS) model=vit ckpt_path=last hydra.sweep.dir=$(DEIT)/vit $(ARGS)
	$(BIN)/vitbench-train -m seed=$(DEIT_SEEDS) model=deit model.distillation.kind=none,soft,hard ckpt_path=last \
		hydra.sweep.dir=$(DEIT)/deit $(ARGS)
	$(BIN)/vitbench-compare $(DEIT)/vit $(DEIT)/deit --out $(DEIT)/report

# The DeiT paper's students keep gaining from the teacher with longer training where undistilled
# ones saturate: the same table at 12 epochs (3x the CPU default), 2 seeds, each seed's four runs together.
deit-long:  ## The DeiT table at 12 epochs, 2 seeds (~100 min on 2 CPU cores); resumable
	$(MAKE) deit-table DEIT=multirun/deit_long DEIT_SEEDS=0,1 ARGS='trainer.max_epochs=12 $(ARGS)'

# Soft distillation's weight alpha at the DeiT paper's temperature tau 3 (its soft run: alpha 0.1), at
# the CPU default; with make deit-table's soft row (alpha 0.5, tau 1) it also shows tau's effect.
DEIT_SOFT ?= multirun/deit_soft
DEIT_SOFT_SEEDS ?= 0
deit-soft: teacher  ## DeiT soft distillation at tau 3 with alpha 0.1, 0.5, 0.9 (~14 min a seed); resumable
	$(BIN)/vitbench-train -m seed=$(DEIT_SOFT_SEEDS) model=deit model.distillation.kind=soft \
		model.distillation.tau=3 model.distillation.alpha=0.1,0.5,0.9 ckpt_path=last hydra.sweep.dir=$(DEIT_SOFT) $(ARGS)
	$(BIN)/vitbench-compare $(DEIT_SOFT) --out $(DEIT_SOFT)/report

browser:  ## Install Debian's chromium (report.html's browser test) where apt is there
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	else echo "no apt here: the report's browser test is skipped (install chromium to run it)"; fi

test: setup browser lint  ## Lint, then run the tests (CPU, a few minutes)
	$(BIN)/pytest -q $(ARGS)

test-slow: setup  ## Run only the slow end-to-end tests
	$(BIN)/pytest -q -m slow $(ARGS)

lint: setup  ## ruff check and ruff format --check (apply the format with: .venv/bin/ruff format src tests)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

clean:  ## Remove run outputs (outputs/, multirun/, wandb/, logs/), nothing else
	rm -rf outputs multirun wandb logs lightning_logs
