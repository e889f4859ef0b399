# Two entry points (see README): `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KGREC := $(VENV)/bin/kgrec
# OpenMP spin-waiting made small torch ops 40-200x slower on 2-core machines under load.
export OMP_WAIT_POLICY := PASSIVE
EXTRAS ?= cpu,dev,notebooks

.PHONY: demo test lint install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "kgrec needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

# The main job, end to end on the default dataset (MovieLens-100K + Freebase KG).
demo: $(VENV)/.installed
	$(KGREC) data fetch ml-100k
	$(KGREC) data describe ml-100k
	$(KGREC) graph build graphs/movielens-100k.toml --out out/graphs/movielens-100k --overwrite
	$(KGREC) text encode graphs/movielens-100k.toml
	$(KGREC) compare graphs/movielens-100k.toml --models pop,itemknn,ease,mf,lightgcn,hybrid --seeds 1 --out out/compare-warm
	$(KGREC) train graphs/movielens-100k.toml --model hybrid --epochs 40 --out out/hybrid --no-progress
	$(KGREC) neighbors graphs/movielens-100k.toml --model out/hybrid --add -k 10 \
	    --title "Galaxy Raiders" --description "A space opera: rebels fight an evil galactic empire with starships" \
	    --attr class="Sci-Fi|Action|Adventure" --attr release_year=1997

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check kgrec tests notebooks $(wildcard bench)
	$(VENV)/bin/ruff format --check kgrec tests notebooks $(wildcard bench)

test: lint
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
