# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
X_PACKAGES := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libxcb-xkb1 libxkbcommon-x11-0 \
	libgl1 libegl1 libgl1-mesa-dri libdbus-1-3 libfontconfig1
DEMO_OUT ?= demo_output

.PHONY: venv test demo xvfb bench clean sample-data

venv: $(STAMP)

# torch first and pinned: a range that admits a newer torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

xvfb:
	@if ! command -v Xvfb >/dev/null 2>&1; then \
		echo "Installing Xvfb and the xcb libraries with apt"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(X_PACKAGES) >/dev/null; \
	fi

test: $(STAMP) xvfb
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/dmicro demo --out $(DEMO_OUT)

sample-data: $(STAMP)
	$(VENV)/bin/dmicro phantom --count 3 --size 256 --seed 100 --out sample_data --overwrite

clean:
	rm -rf $(VENV) $(DEMO_OUT)
