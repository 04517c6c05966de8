# convlens: `make run` installs everything and runs the pipeline; `make test-all` installs and runs every test (CI),
# `make test` all but the README's workflows (minutes of `dvc exp run`; docs/testing.md).
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install run test test-all test-fast lint browser screenshots docs-figures params plots bench mutate clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install        ## the whole chapter: dvc repro (a no-op when nothing changed)
	dvc repro

# pytest-xdist workers for `make test` / `make test-fast`: one per CPU the OS gives us (nproc; xdist's `auto` counts
# physical cores, 1 on a 2-vCPU runner); TEST_JOBS=0 runs everything in one process. worksteal: a worker that runs
# out takes the later half of the other's queue (the end-to-end tests take 5 s to 3 min each). docs/testing.md
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := $(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal

test: install lint browser  ## lint, then every test but the README's workflows (< 4 min on 2 cores): the developer's loop
	$(PYTEST) -m "not readme"

test-all: install lint browser  ## lint, then every test, the README's workflows run as written included: what CI runs
	$(PYTEST)

test-fast: install  ## the tests without the end-to-end DVC runs
	$(PYTEST) -m "not slow"

lint: install  ## ruff, and the subpackages' layers (import-linter: pyproject.toml, docs/architecture.md)
	ruff check .
	ruff format --check .
	lint-imports --no-cache --no-logo

# The report's browser test (tests/e2e/test_report_browser.py) opens the page in headless Chromium: Debian's `chromium`,
# installed here when missing and we are root with apt-get; otherwise one line says why the test will skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "browser: installing chromium (apt-get) for the report's browser test"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
	      >/dev/null 2>&1 || echo "browser: apt-get could not install chromium; the report's browser test will skip"; \
	  else \
	    echo "browser: no chromium on PATH and no root apt-get to install it; the report's browser test will skip"; \
	  fi; }

# docs/report-en.png and docs/report-ko.png: the top of the report in each language (1280×1600, headless Chromium), from
# this checkout's real run where it has one (outputs/ after `dvc repro` or `dvc pull`), else from the tiny test run.
screenshots: install browser  ## regenerate the report's screenshots in docs/ (tests/e2e/test_report_browser.py)
	CONVLENS_SCREENSHOTS=$(abspath docs) $(PY) -m pytest -q tests/e2e/test_report_browser.py -k screenshots

# docs/'s figures come from three runs (bench/docs_figures.py: RUNS, FIGURES): RUN=default (dvc exp run), RUN=full
# (dvc exp run -S analyses=full -S samples.split=test -S 'samples.indices=[0,1,2,3,6,12]': Grad-CAM of test images 0
# and 12, activation maximization), RUN=film (dvc exp run -S model=train); make the run, then copy its figures
RUN ?= default
docs-figures: install  ## copy a run's figures from outputs/ into docs/ (RUN=default|full|film; the run first: bench/docs_figures.py)
	$(PY) -m bench.docs_figures $(RUN)

# `make params render.dpi=70` or `model=train` would set a make variable, not the key: refused, naming the command
# that takes it (a key of conf/: a dotted name, or a config group, conf/'s folders)
CONF_GROUPS := $(patsubst conf/%/,%,$(wildcard conf/*/))
DOTTED := $(foreach v,$(MAKEOVERRIDES),$(if $(or $(findstring .,$(word 1,$(subst =, ,$(v)))),$(filter $(word 1,$(subst =, ,$(v))),$(CONF_GROUPS))),$(v)))

params: install     ## recompose params.yaml after editing conf/ by hand (dvc repro does not); with overrides: python -m convlens params KEY=VALUE
	$(if $(strip $(DOTTED)),$(error make params takes no KEY=VALUE ($(strip $(DOTTED))): run $(PY) -m convlens params $(strip $(DOTTED))))
	$(PY) -m convlens params

plots: install      ## dvc_plots/index.html: every figure and table, this run vs HEAD
	dvc plots diff

bench: install      ## issue 25's acceptance table, the pipeline against the chapter's notebook: writes bench/results.md (~25 min)
	$(PY) -m bench

# MODULES: library modules to mutate (dotted, under convlens: analysis.stats, render.grids, schema), e.g. `make mutate MODULES="analysis.stats render.grids"`;
# empty = the whole library but keras_models.py (pyproject.toml [tool.mutmut]). Results stay in mutants/:
# `$(VENV)/bin/mutmut show <mutant>` prints one diff; a second run reuses them and retests only what changed.
# SAMPLE=K: instead, a seeded 1 in K of the mutants not run yet (of MODULES, else of all), drawn per module: an
# estimate of the library's score in 1/K of the time. The names come from mutants/, so a first run must make it.
MODULES ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SAMPLE ?=
mutate: install     ## mutation testing of convlens with mutmut (hours for the whole library; not in CI): docs/testing.md
ifdef SAMPLE
	mkdir -p mutants && $(VENV)/bin/mutmut results --all true | $(PY) -m bench.mutation_sample $(SAMPLE) $(MODULES) > mutants/sample.txt
	$(VENV)/bin/mutmut run --max-children $(JOBS) $$(cat mutants/sample.txt)
else
	$(VENV)/bin/mutmut run --max-children $(JOBS) $(foreach m,$(MODULES),'convlens.$(m).*')
endif
	$(VENV)/bin/mutmut results | grep -v ': not checked$$' || true  # survivors, timeouts (the rest: not run yet)
	$(VENV)/bin/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo

clean:
	rm -rf outputs/data outputs/models outputs/weights outputs/samples outputs/feature_maps outputs/figures outputs/report outputs/compare dvc_plots
