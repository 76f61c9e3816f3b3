# rnn-bench: `make help` lists the targets. Every target builds .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build of torch by default; GPU users: make venv TORCH_SPEC='torch==2.11.0' TORCH_INDEX=<CUDA wheel index URL>
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
EXP ?= default
STORE ?= results/store
REPORT ?= results/report
OVERRIDES ?=
CI_STORE ?= results/ci/store
BASELINE ?= results/baseline
COMPARE_FLAGS ?=
# A/B mode of ci-bench: BASE=<git ref> (another commit) or BASE_PYTHON=<python> (another torch)
BASE ?=
BASE_PYTHON ?=
ROUNDS ?= 5
CI_AB ?= results/ci/ab
CI_HISTORY ?= results/ci/history
CI_COUNTS ?= results/ci/counts
# make reference: which committed study to re-measure (results/reference/README.md)
STUDY ?= classic
REFERENCE ?= results/reference

.DEFAULT_GOAL := help
.PHONY: docs reference help venv lint test test-slow test-gpu test-slurm slurm-up slurm-down bench report ci-bench ci-counts ci-history baseline bench-pytest clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev,launchers]"
	touch $@

venv: $(VENV)/.installed ## create .venv and install the suite (torch: TORCH_SPEC, TORCH_INDEX)

lint: venv ## the linter (ruff, configured in pyproject.toml)
	$(PY) -m ruff check bench analysis hydra_plugins tests

test: venv ## run the test suite (no GPU needed; slow tests excluded)
	$(PY) -m pytest -m "not slow and not gpu and not benchmark_suite and not slurm" -q --durations=10

test-slow: venv ## run the slow tests (end to end: CLI sweeps, A/B runs, kills, reports of the reference stores, launchers, training)
	$(PY) -m pytest -m "slow" -q

test-gpu: venv ## run the GPU tests (needs CUDA)
	$(PY) -m pytest -m "gpu" -q

slurm-up: ## start a one-node SLURM cluster on this machine (root; installs slurm-wlm and munge)
	bash scripts/slurm.sh up

slurm-down: ## stop the daemons that slurm-up started
	bash scripts/slurm.sh down

test-slurm: venv ## run the SLURM tests against the cluster that answers (make slurm-up)
	$(PY) -m pytest -m "slurm" -q -rs

bench: venv ## run the preset sweep EXP (default: every measure) and write the report
	$(PY) -m bench.run.suite $(EXP) results_dir=$(STORE) $(OVERRIDES)
	$(PY) -m analysis.report $(STORE) --out $(REPORT)

report: venv ## rebuild tables, figures and report.md from the stored records only
	$(PY) -m analysis.report $(STORE) --out $(REPORT)

docs: venv ## rewrite the README's generated blocks and docs/figures from the committed stores
	$(PY) -m analysis.readme

# Measures into STUDY.new (an interrupted run resumes there) and swaps it in only when every
# point succeeded, so a failed re-measure never loses the committed store.
reference: venv ## re-measure a reference study from a clean commit (STUDY=classic, fair, papers, modern, selection, crossover, cpu_cost), then make docs
	$(PY) -m bench.run.reference $(STUDY)
	$(PY) -m analysis.readme

ci-bench: venv ## CI regression check: A/B against BASE=<ref> or BASE_PYTHON=<python>, else against results/baseline
	rm -f results/ci/verdict.md
ifneq ($(BASE)$(BASE_PYTHON),)
	$(PY) -m bench.ab $(if $(BASE),--base $(BASE)) $(if $(BASE_PYTHON),--base-python $(BASE_PYTHON)) \
		--rounds $(ROUNDS) --out $(CI_AB)
	$(PY) -m analysis.compare --ab $(CI_AB) --out results/ci/verdict.md --history $(CI_HISTORY) $(COMPARE_FLAGS)
else
	rm -rf $(CI_STORE) $(CI_STORE)-confirm
	$(PY) -m bench.run.suite ci results_dir=$(CI_STORE)
	@# A timing regression must show again in a fresh confirmation run (a transient load on a
	@# shared runner does not repeat; a real slowdown does).
	$(PY) -m analysis.compare $(BASELINE) $(CI_STORE) $(COMPARE_FLAGS) --out results/ci/verdict-first.md > /dev/null; rc=$$?; \
	[ $$rc -ne 0 ] && [ -s results/ci/verdict-first.md ] && grep -E "REGRESSION|Verdict" results/ci/verdict-first.md; \
	[ $$rc -eq 2 ] && exit 2; cands="$(CI_STORE)"; if [ $$rc -eq 1 ]; then \
	  echo "ci-bench: regression seen; re-measuring once to confirm"; \
	  $(PY) -m bench.run.suite ci results_dir=$(CI_STORE)-confirm; cands="$$cands $(CI_STORE)-confirm"; \
	fi; \
	$(PY) -m analysis.compare $(BASELINE) $$cands --out results/ci/verdict.md --history $(CI_HISTORY) $(COMPARE_FLAGS)
endif

# Instruction counts are deterministic: base and head are counted at the same time, and one run
# is a verdict (bench/ab/counts.py). valgrind is installed from Debian's packages where missing.
ci-counts: venv ## CI instruction-count check (valgrind): every cell's training step, head against BASE=<ref> (default HEAD~1) or BASE_PYTHON
	rm -f results/ci/counts.md
	bash scripts/valgrind.sh install
	$(PY) -m bench.ab.counts $(if $(BASE)$(BASE_PYTHON),,--base HEAD~1) $(if $(BASE),--base $(BASE)) \
		$(if $(BASE_PYTHON),--base-python $(BASE_PYTHON)) --out $(CI_COUNTS)
	$(PY) -m analysis.ci.counts $(CI_COUNTS) --out results/ci/counts.md --history $(CI_HISTORY)

ci-history: venv ## draw every CI metric across the commits in results/ci/history
	$(PY) -m analysis.history $(CI_HISTORY) --out results/ci/history.png

baseline: venv ## re-record results/baseline on this machine from a clean commit (commit it, name the machine)
	$(PY) -m bench.run.reference --baseline $(BASELINE)
	$(PY) -m analysis.ci.manifest $(BASELINE) --preset ci

bench-pytest: venv ## pytest-benchmark micro-benchmarks, JSON history under results/pytest-benchmark
	$(PY) -m pytest tests/benchmarks -m benchmark_suite --benchmark-only \
		--benchmark-storage=results/pytest-benchmark --benchmark-autosave -q

clean: ## remove generated results (keeps .venv, the baseline and GPU results)
	rm -rf results/store results/report results/ci/store* results/ci/ab results/ci/verdict.md results/ci/counts results/ci/counts.md results/hydra
