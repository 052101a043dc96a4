# The README's commands. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI_BUILT := src/waketrain/static/index.html
UI_SOURCES := $(shell find web/src web/index.html web/package.json web/package-lock.json \
	web/vite.config.ts web/tsconfig*.json -type f 2>/dev/null)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint docs bench node ui test-tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,train,runtime,dev]'
	touch $(STAMP)

# Node.js and npm build the UI; Debian's packages when the machine has none.
node:
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq nodejs npm >/dev/null; } || \
		{ echo "npm is missing: install Node.js 20+ and npm"; exit 1; }

web/node_modules/.package-lock.json: web/package-lock.json | node
	cd web && npm ci --no-audit --no-fund --loglevel=error

$(UI_BUILT): web/node_modules/.package-lock.json $(UI_SOURCES)
	cd web && npm run build

ui: $(UI_BUILT)

# The real parts tests start: headless Chromium for tests/e2e (Playwright downloads no
# browser), OpenSSH's server as the board, shellcheck for the board's script, Mosquitto,
# and PostgreSQL's server (Debian keeps it in /usr/lib/postgresql/<version>/bin).
TEST_TOOLS := $(CHROMIUM):chromium /usr/sbin/sshd:openssh-server /usr/bin/shellcheck:shellcheck \
	/usr/sbin/mosquitto:mosquitto /usr/bin/pg_dump:postgresql-client
test-tools:
	@missing="$$(for t in $(TEST_TOOLS); do [ -x "$${t%%:*}" ] || echo "$${t#*:}"; done; \
		command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		echo postgresql)"; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		apt-get install -y -qq $$missing >/dev/null; } || \
		{ echo "missing: $$missing (apt-get install them as root)"; exit 1; }

run: $(STAMP) $(UI_BUILT)
	$(BIN)/waketrain serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs/hooks
	$(BIN)/ruff format --check src tests bench docs/hooks
	$(BIN)/mypy
	$(BIN)/hadolint --config deploy/docker/hadolint.yaml deploy/docker/Dockerfile.* deploy/board/Dockerfile

# The user documentation (docs/, mkdocs.yml) into site/; --strict fails on a broken link or
# anchor. Not --quiet: in mkdocs 1.6 it hides the warnings that --strict counts (mkdocs#4126).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

test: lint docs $(UI_BUILT) test-tools
	$(BIN)/pytest

# The benchmarks behind docs/benchmarks.md; each prints its table (16 min on
# 2 cores). The others (closed loop, load, the backend comparison) are run one by one.
bench: $(STAMP)
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/train_speed.py --device all
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/detector_cost.py --seconds 120

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache web/node_modules src/waketrain/static site
