# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
# the versions the tests passed with; `make constraints` refreshes them in a scratch venv
CONSTRAINTS := constraints.txt
LOCK_VENV := .venv-constraints
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
X_PACKAGES := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libxcb-xkb1 libxkbcommon-x11-0 \
	libgl1 libegl1 libgl1-mesa-dri libdbus-1-3 libfontconfig1
DEMO_OUT ?= demo_output
# benchmark data of the issue-10 models (`make bench-data`): their training folders (the cards' test
# splits are in real-train) and the held-out folders of other seeds; across machines equal within float32
# rounding. The all-optical-baseline run folders are made by `make bench-train`.
BENCH_DATA ?= bench_data
BENCH_RUNS ?= bench_runs

.PHONY: venv test lint demo xvfb bench bench-data bench-train clean sample-data constraints

venv: $(STAMP)

# torch first and pinned: a range that admits a newer torch would pull a multi-GB CUDA build.
# Everything else at the tested versions of constraints.txt.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

# Newest versions the ranges in pyproject.toml admit, installed in a scratch venv and frozen (local
# version labels such as +cpu dropped, so the constraint admits the build `pip install torch` gives).
# Run `make test` afterwards and commit constraints.txt only if it passes.
constraints:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[test]"
	{ grep '^#' $(CONSTRAINTS); \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^#' | sed -E 's/^([^=]+==[^+]+)\+.*/\1/'; \
	} > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)
	@echo "constraints.txt refreshed; run make test before committing it"

xvfb:
	@if ! command -v Xvfb >/dev/null 2>&1; then \
		echo "Installing Xvfb and the xcb libraries with apt"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(X_PACKAGES) >/dev/null; \
	fi

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

test: lint xvfb
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/dmicro demo --out $(DEMO_OUT)

sample-data: $(STAMP)
	$(VENV)/bin/dmicro phantom --count 3 --size 256 --seed 100 --out sample_data --overwrite

bench-data: $(STAMP)
	$(VENV)/bin/dmicro phantom --out $(BENCH_DATA)/real-train --count 60 --size 512 --seed 1 --style realistic
	$(VENV)/bin/dmicro phantom --out $(BENCH_DATA)/round-train --count 30 --size 512 --seed 2 --style round
	$(VENV)/bin/dmicro phantom --out $(BENCH_DATA)/real-test --count 16 --size 512 --seed 101 --style realistic
	$(VENV)/bin/dmicro phantom --out $(BENCH_DATA)/round-test --count 8 --size 512 --seed 102 --style round
	$(VENV)/bin/dmicro phantom --out $(BENCH_DATA)/dense-test --count 8 --size 512 --seed 103 --style dense

# Trains the all-optical baselines the report compares against (stage 1 only; not shipped).
bench-train: $(STAMP)
	for p in lff-x64 lff-x256 d2nn-x64; do $(VENV)/bin/dmicro train --preset $$p --stages 1 \
		--data $(BENCH_DATA)/real-train --extra-data $(BENCH_DATA)/round-train --extra-data-weight 0.3 --seed 0 \
		--out $(BENCH_RUNS)/$$p-stage1 --quiet; done

# Regenerates docs/benchmarks.md and its plots from the shipped phase models (+ the bench-train runs).
# The compression curve's x4/x16/x1024 models were not retrained for issue 10: the curve has x64 and x256.
HELDOUT := --heldout $(BENCH_DATA)/real-test --heldout $(BENCH_DATA)/round-test --heldout $(BENCH_DATA)/dense-test
bench: $(STAMP)
	$(PY) benchmarks/bench_quality.py --data $(BENCH_DATA)/real-train \
		--models lff-x64,lff-x256,d2nn-x64,lff-x64-noisy,d2nn-x64-noisy \
		--baseline lff-x64=$(BENCH_RUNS)/lff-x64-stage1 --baseline lff-x256=$(BENCH_RUNS)/lff-x256-stage1 \
		--baseline d2nn-x64=$(BENCH_RUNS)/d2nn-x64-stage1
	$(PY) benchmarks/bench_fresh.py --data $(BENCH_DATA)/real-test --count 16 --seed 101 --style realistic --size 512
	$(PY) benchmarks/bench_photons.py --data $(BENCH_DATA)/real-train --fields 6 --models lff-x64,lff-x64-noisy,d2nn-x64
	$(PY) benchmarks/bench_speed.py
	for m in lff-x64 lff-x256; do \
		$(PY) benchmarks/bench_full_fov.py --model $$m --data $(BENCH_DATA)/real-test --split all && \
		$(PY) benchmarks/bench_full_fov.py --model $$m --data $(BENCH_DATA)/real-test --split all --tiles circular --tag=-circular; done
	$(PY) benchmarks/bench_full_fov.py --model lff-x64 --data $(BENCH_DATA)/real-test --split all --tiles dark --tag=-dark
	$(PY) benchmarks/bench_realdata.py --model lff-x64
	$(PY) benchmarks/bench_realdata.py --model lff-x256
	$(PY) benchmarks/bench_realdata.py --model d2nn-x64
	$(PY) benchmarks/figure_reconstructions.py --data $(BENCH_DATA)/real-train
	for m in lff-x64 lff-x256 d2nn-x64; do \
		$(PY) benchmarks/bench_honest.py --model $$m --sections thick,density,measured,invariance $(HELDOUT) \
			--baseline $(BENCH_RUNS)/$$m-stage1; done
	for m in lff-x64-noisy d2nn-x64-noisy; do \
		$(PY) benchmarks/bench_honest.py --model $$m --sections thick,density,measured,invariance $(HELDOUT); done
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(DEMO_OUT)
