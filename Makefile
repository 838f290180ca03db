# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test setup setup-dev examples clean

# Real images for the demo, read in place from the AUL folder when it is beside the clone (never
# copied into the repository): the two lowest image ids of each class (Benign, Malignant, Normal
# in turn) whose file names no earlier pick has — inputs with the same file name form one case —
# not chosen by result.
AUL ?= ../shared/data/aul
AUL_DEMO := $(wildcard $(AUL)/Benign/image/1.jpg $(AUL)/Benign/image/2.jpg $(AUL)/Malignant/image/4.jpg \
	$(AUL)/Malignant/image/5.jpg $(AUL)/Normal/image/3.jpg $(AUL)/Normal/image/6.jpg)

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e .
	touch $(STAMP)

$(DEVSTAMP): $(STAMP)
	$(PIP) install -q -e '.[dev]'
	touch $(DEVSTAMP)

setup: $(STAMP)
setup-dev: $(DEVSTAMP)

# The contrast clip is analysed as what it is (CEUS, time 0 = injection) in its own output folder.
DEMO_BMODE := $(filter-out examples/ceus_clip.avi,$(wildcard examples/*.png examples/*.avi)) examples/dicom

demo: $(STAMP)
	$(VENV)/bin/livus analyze $(DEMO_BMODE) $(AUL_DEMO) --out demo-output
	$(VENV)/bin/livus analyze examples/ceus_clip.avi --ceus-offset 0 --out demo-output/ceus

test: $(DEVSTAMP)
	$(PY) -m pytest tests

examples: $(STAMP)
	$(VENV)/bin/livus simulate-examples --out examples

clean:
	rm -rf $(VENV) demo-output
