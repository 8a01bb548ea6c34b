# The two commands a newcomer runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLAUDE_CODE_VERSION := 2.1.330
CLAUDE := .cache/claude-code/node_modules/.bin/claude
# Real MCP servers the MCP gateway's tests run behind Tollgate (streamable HTTP and stdio).
MCP_SERVERS_VERSION := 2026.8.31
MCP_SERVERS := .cache/mcp-servers/node_modules/.bin/mcp-server-filesystem

.PHONY: run test bench install lint vendor screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

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

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py serve

test: $(STAMP) $(CLAUDE) $(MCP_SERVERS)
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
	$(BIN)/python -m ruff check controlplane governance audit ledger dataplane tests bench
	$(BIN)/python -m mypy dataplane
