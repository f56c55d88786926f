# Stepgate — make help lists the targets.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOLANGCI  := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

.PHONY: help build run check vet lint test test-future test-short screenshots interop-deps browser-deps proxy-deps cgo-deps bench bench-gateway bench-db fuzz clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build ./stepgate
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o stepgate ./cmd/stepgate

run: build ## run the server on defaults (127.0.0.1:8080, ./stepgate-data)
	./stepgate serve

check: vet lint test test-future ## what CI runs: vet, lint, every test against SQLite and a throwaway PostgreSQL, and again a year ahead

vet: ## go vet and gofmt
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint: ## golangci-lint (built from the Go module proxy on first use)
	$(GO) run $(GOLANGCI) run ./...

# STEPGATE_REQUIRE_INTEROP turns the openid-client interop test's skip
# (no node, no node_modules) into a failure, and STEPGATE_REQUIRE_BROWSER
# the browser tests' (no Chromium; among them the README walk-through), and STEPGATE_REQUIRE_PROXIES
# the forward-auth attacks through nginx and Caddy, and
# STEPGATE_REQUIRE_SQL_PARSER a build without cgo (no SQL parser), so CI
# cannot pass without them.
test: interop-deps browser-deps proxy-deps cgo-deps ## every test, with the race detector, PostgreSQL started and stopped around it
	STEPGATE_REQUIRE_INTEROP=1 STEPGATE_REQUIRE_BROWSER=1 STEPGATE_REQUIRE_PROXIES=1 STEPGATE_REQUIRE_SQL_PARSER=1 scripts/with-postgres.sh $(GO) test -race -count=1 -timeout 30m ./...

# The whole suite again with time.Now a year ahead in every test binary
# (scripts/test-future.sh): a test that pins a date while some code reads
# the real clock fails here, not on the day CI turns red.
test-future: interop-deps browser-deps proxy-deps cgo-deps ## every test with the clock moved a year ahead (STEPGATE_TEST_CLOCK_SHIFT)
	STEPGATE_REQUIRE_INTEROP=1 STEPGATE_REQUIRE_BROWSER=1 STEPGATE_REQUIRE_PROXIES=1 STEPGATE_REQUIRE_SQL_PARSER=1 STEPGATE_TEST_CLOCK_SHIFT=$${STEPGATE_TEST_CLOCK_SHIFT:-8760h} GO=$(GO) scripts/with-postgres.sh scripts/test-future.sh ./...

test-short: ## unit tests without PostgreSQL
	$(GO) test -count=1 ./...

screenshots: browser-deps ## refresh docs/img: the README walk-through's pages (docs/img/walkthrough) and the console's
	STEPGATE_REQUIRE_BROWSER=1 STEPGATE_SCREENSHOTS=docs/img $(GO) test -count=1 -run '^(TestBrowserWalkThrough|TestBrowserConsole)$$' ./cmd/stepgate ./internal/app

interop-deps: ## Node.js and openid-client for the interop test (test/interop), Flask for the upstream-router test
	@command -v npm >/dev/null || scripts/install-deps.sh nodejs npm
	scripts/install-deps.sh python3-flask
	@node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("interop-deps: openid-client 6 needs Node.js 20 or later, this is " + process.version); process.exit(1) }'
	npm ci --prefix test/interop --no-audit --no-fund

browser-deps: ## Debian's Chromium for the passkey browser test (internal/app/browser_test.go)
	scripts/install-deps.sh chromium chromium-driver

proxy-deps: ## Debian's nginx and Caddy for the forward-auth attacks through them (internal/app/forward_proxy_test.go)
	scripts/install-deps.sh nginx-light caddy

cgo-deps: ## a C compiler: the SQL classifier (internal/dbgate/sqlclass) builds PostgreSQL's parser with cgo
	scripts/install-deps.sh gcc libc6-dev

bench: ## benchmarks (session lookup and the sign-in log on both backends, password hashing)
	scripts/with-postgres.sh $(GO) test -run '^$$' -bench . -benchmem ./...

bench-gateway: ## gateway throughput against nginx, measured by wrk in a process of its own (installs nginx-light and wrk if missing)
	scripts/install-deps.sh nginx-light wrk
	$(GO) run ./bench/gateway -duration 8s -rounds 3

bench-db: cgo-deps ## the database gateway against PostgreSQL directly and PgBouncer, with pgbench (installs PgBouncer if missing)
	scripts/install-deps.sh postgresql pgbouncer
	$(GO) run ./bench/dbgate -duration 10s

fuzz: ## run each fuzz target for 30s
	@for t in $$(grep -rhoE 'func (Fuzz[A-Za-z]+)' --include='*_test.go' . | awk '{print $$2}'); do \
		pkg=$$(grep -rlE "func $$t\(" --include='*_test.go' . | xargs dirname); \
		echo "== $$t ($$pkg)"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 30s $$pkg || exit 1; done

clean: ## remove build output
	rm -f stepgate
