# The two commands a newcomer runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every install comes from a lock file (pip-compile --generate-hashes): each
# package at one version and hash, here, in CI and in the image.
RUN_LOCK := requirements/run.txt
TEST_LOCK := requirements/test.txt
# What running needs (`make run`), and that plus the test extras (`make test`).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-test
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE := .cache/claude-code/node_modules/.bin/claude
# Real MCP servers the MCP gateway's tests run behind Tollgate (streamable HTTP and stdio).
MCP_SERVERS_VERSION := 2026.8.31
MCP_SERVERS := .cache/mcp-servers/node_modules/.bin/mcp-server-filesystem
# A real, certified OpenID Connect provider the console's single sign-on tests sign in at.
OIDC_PROVIDER_VERSION := 9.13.3
OIDC_PROVIDER := .cache/oidc-provider/node_modules/oidc-provider/package.json

.PHONY: run test bench install lint lock vendor screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-deps: nothing the lock does not name comes in, and `pip check` proves
# it names everything. The project itself is an editable install, built by
# the locked setuptools.
$(RUN_STAMP): $(RUN_LOCK) | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(RUN_LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

$(STAMP): $(TEST_LOCK) $(RUN_STAMP)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(TEST_LOCK)
	$(BIN)/python -m pip check
	touch $@

install: $(STAMP)

# After a change to pyproject.toml's dependencies: resolve the lock files
# again, keeping every pin that still fits (LOCK_ARGS=--upgrade moves them all
# to the newest). Against the package index alone: a local wheel directory in
# this machine's pip configuration would put hashes nobody else has in them.
PIP_COMPILE := .cache/pip-tools/bin/pip-compile
LOCK := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PIP_COMPILE) -q --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
$(PIP_COMPILE):
	$(PYTHON) -m venv .cache/pip-tools
	.cache/pip-tools/bin/python -m pip install -q pip-tools==7.7.0

lock: $(PIP_COMPILE)
	$(LOCK) -o $(RUN_LOCK) pyproject.toml requirements/tools.in
	$(LOCK) --extra test -c $(RUN_LOCK) -o $(TEST_LOCK) pyproject.toml requirements/tools.in

# The console's charting library, committed under static/vendor/ (installs are
# often air-gapped: nothing is loaded from a CDN). `make vendor` fetches the
# pinned version again from npm, for an upgrade: change the version, run it, commit.
UPLOT_VERSION := 1.6.32
vendor:
	rm -rf .cache/uplot static/vendor/uplot-*
	mkdir -p .cache/uplot static/vendor/uplot-$(UPLOT_VERSION)
	cd .cache/uplot && npm pack --silent uplot@$(UPLOT_VERSION) && tar xzf uplot-$(UPLOT_VERSION).tgz
	cp .cache/uplot/package/dist/uPlot.iife.min.js .cache/uplot/package/dist/uPlot.min.css \
		.cache/uplot/package/LICENSE static/vendor/uplot-$(UPLOT_VERSION)/

# The real Claude Code CLI for the end-to-end tests, cached outside the venv.
$(CLAUDE):
	mkdir -p .cache/claude-code
	npm install --no-audit --no-fund --prefix .cache/claude-code @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

$(MCP_SERVERS):
	mkdir -p .cache/mcp-servers
	npm install --no-audit --no-fund --prefix .cache/mcp-servers \
		@modelcontextprotocol/server-everything@$(MCP_SERVERS_VERSION) \
		@modelcontextprotocol/server-filesystem@$(MCP_SERVERS_VERSION)

$(OIDC_PROVIDER):
	mkdir -p .cache/oidc-provider
	npm install --no-audit --no-fund --prefix .cache/oidc-provider oidc-provider@$(OIDC_PROVIDER_VERSION)

run: $(RUN_STAMP)
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py serve

test: $(STAMP) $(CLAUDE) $(MCP_SERVERS) $(OIDC_PROVIDER)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/mcp_gateway.py

# A picture of every console page (chromium at 1280 px, a month of made-up
# traffic) into docs/screenshots/, from the browser tests that visit them.
screenshots: $(STAMP)
	TOLLGATE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots env -u DATABASE_URL -u REDIS_URL \
		$(BIN)/python -m pytest tests/controlplane/web/test_console_pages.py \
		tests/controlplane/web/test_console_browser.py -q

lint: $(STAMP)
	$(BIN)/python -m ruff check controlplane governance audit ledger identity devicelogin dataplane tests bench
	$(BIN)/python -m mypy dataplane
