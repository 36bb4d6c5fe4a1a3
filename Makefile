# Control-host tasks of pigpen.pgsql (Debian 12, run as root).
#
#   make sandbox   install what the control host needs, build the node image,
#                  start the four sandbox nodes and deploy playbooks/install.yml
#   make test      unit tests, lint, collection build and Molecule scenarios
#
# Both are safe to run again. `make help` lists every target.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
VENV_STAMP := $(VENV)/.requirements.stamp
SANDBOX := sandbox/sandbox.sh
SCENARIO ?= default

# The venv's ansible-*, molecule and ansible-lint come first.
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Plain output for logs (CI, `make test | tee`).
export ANSIBLE_FORCE_COLOR := false
export PY_COLORS := 0

.PHONY: help chaos-alerts host-deps venv image sandbox sandbox-create sandbox-deploy sandbox-info \
	sandbox-start sandbox-stop sandbox-status sandbox-destroy sandbox-s3 test test-full unit integration docs-run haproxy-bin prometheus-bin lint sanity core-matrix build \
	test-more molecule molecule-destroy bench bench-sandbox bench-deploy bench-ha bench-backup clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

host-deps: ## install the control host's Debian packages (podman, runc, debootstrap, ...) if missing
	@sandbox/host-deps.sh

venv: $(VENV_STAMP) ## create or refresh .venv from requirements.txt

$(VENV_STAMP): requirements.txt | host-deps
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

image: host-deps ## build the node image unless the current recipe is cached
	@$(SANDBOX) image

# ---- sandbox: the four nodes of inventory/sandbox.yml on 10.10.10.0/24 ----

sandbox: host-deps venv ## nodes up and deployed (playbooks/install.yml), then how to connect
	@$(SANDBOX) create
	@$(MAKE) sandbox-deploy
	@$(MAKE) sandbox-info

sandbox-create: host-deps venv ## only start the nodes (image, key, network, containers)
	@$(SANDBOX) create

sandbox-deploy: venv ## run playbooks/install.yml on the sandbox
	$(BIN)/ansible-playbook -i inventory/sandbox.yml playbooks/install.yml

sandbox-info: ## how to reach the sandbox nodes
	@echo
	@$(SANDBOX) status
	@echo
	@echo "Nodes (inventory/sandbox.yml, user root, key .sandbox/ssh/id_ed25519):"
	@$(SANDBOX) nodes | sed 's/^/  /'
	@echo
	@echo "  ssh -i .sandbox/ssh/id_ed25519 root@10.10.10.11   # or: sandbox/sandbox.sh ssh pg-test-1"
	@echo "  podman exec -it pigpen-sandbox-pg-test-1 bash"
	@echo "  .venv/bin/ansible all -m ping                      # Ansible, with the repository's ansible.cfg"
	@echo
	@echo "PostgreSQL (sandbox credentials, see docs/sandbox.md):"
	@echo "  psql postgres://dbuser_dba:DBUser.DBA@10.10.10.11:5433/postgres    # primary service (pgbouncer)"
	@echo "  psql postgres://dbuser_dba:DBUser.DBA@10.10.10.11:5434/postgres    # replica service"
	@echo "  psql postgres://dbuser_dba:DBUser.DBA@10.10.10.11:5436/postgres    # primary, direct (no pool)"
	@echo "  psql postgres://test:test@10.10.10.11:5433/test                    # business user and database"
	@echo
	@echo "Lifecycle: make sandbox-stop | sandbox-start | sandbox-status | sandbox-destroy (docs/sandbox.md)"

sandbox-start: ## start stopped sandbox nodes
	@$(SANDBOX) start

sandbox-stop: ## stop the sandbox nodes (they keep their state)
	@$(SANDBOX) stop

sandbox-status: ## container state, address and systemd state of each node
	@$(SANDBOX) status

sandbox-destroy: ## remove the sandbox nodes and network (keeps the image and the SSH key)
	@sandbox/s3.sh stop >/dev/null
	@$(SANDBOX) destroy

sandbox-s3: venv haproxy-bin ## start the sandbox's S3 object store (moto, https://sss.pigsty:9000) for pgbackrest_method minio
	@sandbox/s3.sh start

# ---- tests ----

# CI runs make test and must stay under an hour on a 2-core machine: the
# Molecule scenario lifecycle (members removed and added back, etcd members,
# removal and redeployment of a cluster; about 15 minutes) runs in test-full.
test: host-deps venv haproxy-bin prometheus-bin ## everything CI runs: unit, integration, lint, build, molecule (default, ha, pitr)
	@$(MAKE) unit
	@$(MAKE) integration
	@$(MAKE) lint
	@$(MAKE) core-matrix
	@$(MAKE) build
	@$(MAKE) molecule
	@$(MAKE) molecule SCENARIO=ha
	@$(MAKE) molecule SCENARIO=pitr
	@echo "test: unit, integration, lint, build and molecule (default, ha, pitr) passed"

test-full: host-deps venv haproxy-bin ## make test, then make test-more
	@$(MAKE) test
	@$(MAKE) test-more
	@echo "test-full: make test and make test-more passed"

# What test-full runs after make test (CI's part): about 165 minutes, of
# which the VM scenario takes about 50 under software emulation.
test-more: host-deps venv haproxy-bin ## molecule lifecycle and dr, then the sandbox: its alerts proven by every fault scenario, and every fault scenario with the other plan and pg_rpo 0 (fast/sync, one run each); then molecule vm
	@$(MAKE) molecule SCENARIO=lifecycle
	@$(MAKE) molecule SCENARIO=dr
	@$(MAKE) sandbox
	PIGPEN_FOREIGN_RUN=1 $(BIN)/pytest tests/integration/test_foreign_project.py
	@$(MAKE) chaos-alerts
	$(BIN)/python bench/ha_bench.py --plans fast --modes sync --runs 1 --output .cache/ha-test-full.json
	@$(MAKE) molecule SCENARIO=vm
	@echo "test-more: molecule lifecycle and dr, the alerts of every fault, the fast/sync fault scenarios and molecule vm passed"

# Each fault scenario once on the running sandbox, each one's alerts checked
# at the infra node's webhook recorder (docs/ha.md, "Time to alert"): raised
# and cleared in time, nothing unrelated. About 35 minutes (every scenario
# waits until its alerts had their time).
chaos-alerts: venv ## every fault scenario on the sandbox with its alerts checked at the webhook recorder -> .cache/alerts.json
	$(BIN)/python tools/chaos/run.py tools/chaos/sandbox.yml --check-alerts --tolerance=1.5 --retry-time-misses=1 \
	  --label=alerts --output .cache/alerts.json

# The alerting tests run promtool and amtool; under make a missing binary
# fails them instead of skipping them.
# Coverage of the plugins by the unit tests is reported (the lines no test
# runs, per file) and must stay at 90 % or more.
unit: venv prometheus-bin ## unit tests (tests/unit), promtool tests of every alert included; plugin coverage reported
	@rc=0; PIGPEN_REQUIRE_PROMTOOL=1 $(BIN)/pytest tests/unit --cov=ansible_collections.pigpen.pgsql.plugins \
	  --cov-report=term:skip-covered --cov-fail-under=90 || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "unit: pytest collected no test in tests/unit" >&2; exit 1; fi; \
	exit $$rc

integration: venv haproxy-bin prometheus-bin ## playbook runs that need no node (tests/integration: dry render, validation)
	PIGPEN_REQUIRE_PROMTOOL=1 $(BIN)/pytest tests/integration

# meta/runtime.yml's requires_ansible names the oldest ansible-core the
# collection supports; tools/ansible/strategy patches ansible-core internals,
# so the unit tests of everything that meets ansible-core (filters, modules,
# the controller-side helpers, the strategy, the plugins' documentation; the
# pure model functions do not, and make unit runs them) and the dry render
# (which runs that strategy) also run on it, in a venv of its own
# (.cache/core-<version>). The pinned version of
# requirements.txt is what every other target runs. ansible-core 2.19.0 to
# 2.19.3 are not supported: with the strategy, a playbook there waits forever
# for a task result (measured: 2.19.0 in pg_render, 2.19.1 and 2.19.3 in
# tests/integration/test_render.py; 2.19.4, 2.19.5, 2.19.7, 2.19.12 and
# 2.19.14 pass), hence >=2.19.4.
CORE_MIN := $(shell sed -n 's/^requires_ansible: ">=\([0-9.]*\),.*/\1/p' meta/runtime.yml)
CORE_MIN_VENV := .cache/core-$(CORE_MIN)
CORE_MATRIX_TESTS := tests/unit/plugins/filter tests/unit/plugins/modules tests/unit/plugins/plugin_utils \
  tests/unit/plugins/module_utils/test_api_scheme_moves.py tests/unit/test_strategy_speedups.py \
  tests/unit/test_plugin_docs.py tests/unit/test_playbooks.py tests/unit/test_roles.py
core-matrix: venv haproxy-bin prometheus-bin ## the unit tests of what meets ansible-core, and the dry render, on the oldest ansible-core meta/runtime.yml claims
	@test -n "$(CORE_MIN)" || { echo "core-matrix: no requires_ansible lower bound in meta/runtime.yml" >&2; exit 1; }
	@if [ ! -x $(CORE_MIN_VENV)/bin/ansible-playbook ]; then \
	  python3 -m venv $(CORE_MIN_VENV) && \
	  grep -v -E '^(ansible|ansible-core|molecule|molecule-plugins.*|ansible-lint|moto.*|ruff|mypy)==' requirements.txt \
	    | $(CORE_MIN_VENV)/bin/pip install -q --disable-pip-version-check ansible-core==$(CORE_MIN) -r /dev/stdin; fi
	@$(CORE_MIN_VENV)/bin/ansible --version | head -n 1
	$(CORE_MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(CORE_MATRIX_TESTS)
	PIGPEN_REQUIRE_PROMTOOL=1 $(CORE_MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/integration/test_render.py

haproxy-bin: ## unpack Debian's haproxy into .cache/haproxy so tests can run `haproxy -c`
	@tests/tools/fetch-haproxy.sh

docs-run: venv ## run the docs' runnable commands on the running sandbox (tests/integration/test_doc_commands_run.py)
	PIGPEN_DOCS_RUN=1 $(BIN)/pytest tests/integration/test_doc_commands_run.py

prometheus-bin: ## unpack Debian's promtool and amtool into .cache/prometheus for the alerting tests
	@tests/tools/fetch-prometheus.sh

# ruff and mypy read their settings from pyproject.toml; mypy checks the
# plugins as the package Ansible imports (through .collections), and the
# scripts of tools/ and bench/ on their own.
lint: venv ## ansible-lint, production profile (.ansible-lint); ruff and mypy on the Python (pyproject.toml); shellcheck; changelog fragments; ansible-test sanity
	$(BIN)/ansible-lint
	$(BIN)/ruff check plugins tools bench tests roles sandbox
	$(BIN)/ruff format --check plugins tools bench tests roles sandbox
	$(BIN)/mypy -p ansible_collections.pigpen.pgsql.plugins
	$(BIN)/mypy tools bench
	$(BIN)/shellcheck -x $$(git ls-files '*.sh' .ci/run sandbox/vm/image/files/pigpen-vm-init)
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml
	$(BIN)/antsibull-changelog lint
	@$(MAKE) sanity

# ansible-test wants the collection under ansible_collections/<ns>/<name>/,
# outside any git checkout (it lists a checkout's files with git): the
# tracked files are copied under /tmp, and its pip bootstrap (from
# a host PyPI-only machines cannot reach) is the offline stand-in in
# tools/ansible-test/. Scope: the collection's plugins and changelog
# (tools/, bench/ and tests/ are checked by ruff and mypy above);
# tests/sanity/ignore-<version>.txt says why each ignored finding stays.
SANITY_TREE := /tmp/pigpen-sanity-$(shell id -u)/ansible_collections/pigpen/pgsql
sanity: venv ## ansible-test sanity (plugins, changelog) in its own venvs, offline pip bootstrap
	@rm -rf $(SANITY_TREE) && mkdir -p $(SANITY_TREE) ~/.ansible/test/cache
	@git ls-files -co --exclude-standard -z -- . ":!.collections" | xargs -0 cp --parents -t $(SANITY_TREE)
	@v=$$($(BIN)/python -c 'from ansible_test._internal.python_requirements import get_venv_packages; import types; print(get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"])' 2>/dev/null || echo 24.2); \
	  cp tools/ansible-test/get_pip.py ~/.ansible/test/cache/get_pip_$${v//./_}.py
	cd $(SANITY_TREE) && $(BIN)/ansible-test sanity --python 3.11 --color no plugins/ changelogs/

build: venv ## check that the collection builds (.cache/build)
	@mkdir -p .cache/build
	$(BIN)/ansible-galaxy collection build --force --output-path .cache/build

molecule: host-deps venv image ## Molecule scenario SCENARIO (default: default) on its own network
	@if [ "$(SCENARIO)" = vm ]; then sandbox/host-deps.sh vm; fi
	$(BIN)/molecule test --scenario-name $(SCENARIO)

molecule-destroy: ## remove the Molecule nodes and network, whatever state they are in
	@sandbox/s3.sh --env molecule stop >/dev/null
	@$(SANDBOX) --env molecule destroy
	@$(SANDBOX) --env dr destroy
	@sandbox/vm/vm.sh destroy

# ---- measurements ----

bench: venv ## cluster model benchmark, 1 to 1,000 clusters -> bench/results/model_scale.json
	$(BIN)/python bench/model_scale.py

bench-sandbox: host-deps venv ## image build (cold, cached) and node start times -> bench/results/sandbox.json
	$(BIN)/python bench/sandbox_bench.py

bench-deploy: host-deps venv ## cold, warm and no-op install.yml on 4 fresh nodes -> bench/results/deploy.json
	$(BIN)/python bench/deploy_bench.py

bench-ha: venv ## fault scenarios x plans (fast, norm) x modes (async, pg_rpo 0) on the sandbox -> bench/results/ha.json
	$(BIN)/python bench/ha_bench.py

bench-backup: venv haproxy-bin ## 1 GB pgbench database: backup/restore MB/s, drill and PITR wall time, local, repository host and S3 -> bench/results/backup.json
	$(BIN)/python bench/backup_bench.py

clean: molecule-destroy ## remove Molecule nodes and build output (not the sandbox, image or venv)
	rm -rf .cache/build
