# The two commands of the README:  `make demo`  and  `make test`.
# Both set everything up in .venv first (idempotent). torch is installed first and pinned,
# so pip never resolves an unpinned torch: on CPU-only machines that is the fast local CPU
# build; on a GPU machine pip takes the matching CUDA build of the same version.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
PORT   ?= 8501
# CIFAR-10: $RATZOO_CIFAR10 if set, else the shared offline copy beside the checkout when present,
# else the Hugging Face Hub (uoft-cs/cifar10).
SHARED_CIFAR := $(abspath ../shared/data/cifar10)
export RATZOO_CIFAR10 ?= $(if $(wildcard $(SHARED_CIFAR)/plain_text),$(SHARED_CIFAR),)

.PHONY: demo test setup-demo setup-dev bench clean

$(VENV)/.stamp-base:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	touch $@

$(VENV)/.stamp-demo: $(VENV)/.stamp-base pyproject.toml
	$(PY) -m pip install -q -e ".[demo]"
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base pyproject.toml
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup-demo: $(VENV)/.stamp-demo
setup-dev: $(VENV)/.stamp-dev

demo: setup-demo
	$(VENV)/bin/streamlit run app/streamlit_app.py --server.port $(PORT) --server.headless true

test: setup-dev
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup-dev
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) .pytest_cache
