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
# benchmark data (regenerated bit for bit by the scripts if missing) and the compression-curve /
# all-optical-baseline run folders made by `make bench-train`
BENCH_DATA ?= /tmp/dmicro_bench_fields
BENCH_RUNS ?= bench_runs

.PHONY: venv test lint demo xvfb bench bench-train clean sample-data constraints

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

# Trains the models the report compares against but does not ship (about 1 h on 2 cores).
bench-train: $(STAMP)
	$(VENV)/bin/dmicro phantom --out $(BENCH_DATA) --count 80 --seed 1 --overwrite
	for p in lff-x4 lff-x16 lff-x1024; do $(VENV)/bin/dmicro train --preset $$p --data $(BENCH_DATA) --out $(BENCH_RUNS)/$$p --quiet; done
	for p in lff-x64 d2nn-x64; do $(VENV)/bin/dmicro train --preset $$p --stages 1 --data $(BENCH_DATA) --out $(BENCH_RUNS)/$$p-stage1 --quiet; done

# Regenerates docs/benchmarks.md and its plots from the shipped models (+ the bench-train runs).
bench: $(STAMP)
	$(PY) benchmarks/bench_quality.py --data $(BENCH_DATA) \
		--curve x4=$(BENCH_RUNS)/lff-x4 --curve x16=$(BENCH_RUNS)/lff-x16 --curve x1024=$(BENCH_RUNS)/lff-x1024 \
		--baseline lff-x64=$(BENCH_RUNS)/lff-x64-stage1 --baseline d2nn-x64=$(BENCH_RUNS)/d2nn-x64-stage1
	$(PY) benchmarks/bench_fresh.py
	$(PY) benchmarks/bench_photons.py --data $(BENCH_DATA) --fields 4
	$(PY) benchmarks/bench_speed.py
	for m in lff-x64 lff-x256; do \
		$(PY) benchmarks/bench_full_fov.py --model $$m --data $(BENCH_DATA) && \
		$(PY) benchmarks/bench_full_fov.py --model $$m --data $(BENCH_DATA) --tiles circular --tag=-circular; done
	$(PY) benchmarks/bench_full_fov.py --model lff-x64 --data $(BENCH_DATA) --tiles dark --tag=-dark
	$(PY) benchmarks/bench_realdata.py --model lff-x64
	$(PY) benchmarks/bench_realdata.py --model lff-x256
	$(PY) benchmarks/bench_realdata.py --model d2nn-x64
	$(PY) benchmarks/figure_reconstructions.py --data $(BENCH_DATA)
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(DEMO_OUT)
