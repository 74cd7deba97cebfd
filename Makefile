# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv if missing, installs everything (Python packages; as root, bubblewrap and
# docker.io, and starts dockerd), and is quick when all of it is already there.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rlvr-installed
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TRL_EXPERIMENTAL_SILENCE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install system bench clean

# The extras `make` installs (add an integration's extra here so the suite can test it).
EXTRAS := train,docker,dev,reasoning-gym,verifiers,openenv

$(STAMP): pyproject.toml setup.py scripts/install.sh
	@bash scripts/install.sh $(PYTHON) '$(EXTRAS)'
	@touch $(STAMP)

install: $(STAMP)

system:
	@bash scripts/setup-system.sh

demo: install system
	$(VENV)/bin/rlvr demo

test: install system
	$(PY) -m pytest -q

bench: install system
	for b in benchmarks/bench_*.py; do $(PY) $$b; done

clean:
	rm -rf $(VENV) build dist *.egg-info
