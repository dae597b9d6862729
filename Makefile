# Two commands on a fresh machine:  `make run` (the app on the shipped weights) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test train evaluate clean

$(VENV)/.installed: requirements.txt requirements-train.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-train.txt -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m streamlit run streamlit_app.py

test: $(VENV)/.installed
	$(PY) -m pytest

train: $(VENV)/.installed
	$(PY) train.py

evaluate: $(VENV)/.installed
	$(PY) -m pneumo.training.evaluate --split test

clean:
	rm -rf $(VENV) .cache .pytest_cache
