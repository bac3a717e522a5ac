# bbs — every target is listed by `make help` and in README.md.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# gin links a MessagePack codec (ugorji) that bbs never uses unless told
# not to: nomsgpack drops it (6 MB of the binary). gin 1.12 has no tag for
# its BSON binding or HTTP/3; those stay. Every build, test and check uses
# the same tags, so what is tested and scanned is what ships (the
# Dockerfile and the tests' own builders pass the same -tags).
GOTAGS   := nomsgpack
BIN      := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.9.0
# The vulnerability database, from the golang.org/x/vulndb module (vuln.go.dev
# cannot be reached from where this is built): bump it to pick up new reports.
VULNDB_VERSION      := v0.0.0-20261105234957-e22db6528018
# The workspace's modules, as go.work lists them: a module added there is
# linted and scanned with no change here.
MODULES  := $(shell sed -n 's|^[[:space:]]*\./\([^[:space:]]*\)$$|\1|p' go.work)

# Go 1.26.10 carries security fixes to the standard library that 1.26.8 lacks
# (govulncheck finds them). The go command fetches it once from the module
# proxy; every target, and every go command a test runs, uses it.
export GOTOOLCHAIN ?= go1.26.10

.DEFAULT_GOAL := help
LB_PORT  ?= 8080
LB_TLS_PORT ?= 8443
.PHONY: help run build test image-test e2e bench lint fmt vet staticcheck vulncheck migrate clean cluster cluster-down nginx-conf prom-check

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: build ## one replica on http://localhost:8080: embedded SQLite (bbs.db), in-process bus, no services
	$(BIN)/bbs

build: ## build bin/bbs (static, version stamped)
	CGO_ENABLED=0 $(GO) build -tags '$(GOTAGS)' -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bbs ./services/bbs

# The test targets install what they need (.ci/deps.sh: as root on Debian;
# elsewhere it prints the command) and run against TEST_DATABASE_URL and
# TEST_REDIS_URL, else the local Postgres and Redis, else throwaway ones
# started and stopped around the run (.ci/with-services.sh).
test: ## every test of every module but the browser's and the image's, with -race, against real Postgres and Redis (throwaway ones when none answer)
	@bash .ci/deps.sh test
	bash .ci/with-services.sh $(GO) test -tags '$(GOTAGS)' -race -count=1 -timeout 20m $$($(GO) list work | grep -v -e /services/e2e -e /services/imagetest)

image-test: ## build the Dockerfile with podman (local base images) and run 3 hardened containers against Postgres and Redis (root; apt-get install -y podman runc debootstrap)
	@bash .ci/deps.sh image
	bash .ci/with-services.sh $(GO) test -tags '$(GOTAGS)' -count=1 -timeout 30m -v ./services/imagetest/...

prom-check: ## deploy/observability checked by Debian's real prometheus: promtool check rules, then every dashboard query and alert selector evaluated against 3 replicas under load (also part of make test)
	@bash .ci/deps.sh test
	bash .ci/with-services.sh $(GO) test -tags '$(GOTAGS)' -count=1 -timeout 5m -run '^(TestPrometheus|TestPodMonitor)' -v ./services/deploytest

e2e: ## the page in headless Chromium against real replicas behind a load balancer; screenshots in screenshots/
	@bash .ci/deps.sh e2e
	bash .ci/with-services.sh $(GO) test -tags '$(GOTAGS)' -count=1 -timeout 15m ./services/e2e/...

BENCH_FLAGS ?=
bench: build ## figures (BENCHMARKS.md): broadcast benchmark, then a local cluster under load; JSON in results/
	@command -v pgbench >/dev/null || { echo "make bench needs pgbench: apt-get install -y postgresql-contrib"; exit 1; }
	$(GO) test -run '^$$' -bench Broadcast -benchmem -count 1 ./pkg/sse
	$(GO) build -tags '$(GOTAGS)' -o $(BIN)/loadgen ./services/loadgen
	$(BIN)/loadgen -bbs $(BIN)/bbs -out results $(BENCH_FLAGS)

cluster: build ## the compose stack without Docker: Postgres, Redis, 3 replicas on :18081-18083, nginx on 127.0.0.1:8080 (LB_PORT) and HTTPS/HTTP/2 on :8443 (LB_TLS_PORT)
	BBS_BIN=$(BIN)/bbs LB_PORT=$(LB_PORT) LB_TLS_PORT=$(LB_TLS_PORT) bash services/lb/cluster.sh up

cluster-down: ## stop everything make cluster started
	bash services/lb/cluster.sh down

nginx-conf: ## regenerate services/lb/nginx.conf (compose) from services/lb/nginx.conf.tmpl
	bash services/lb/render.sh compose > services/lb/nginx.conf

lint: fmt vet staticcheck vulncheck ## gofmt, go vet, staticcheck and govulncheck

fmt: ## fail if any file needs gofmt
	@out=$$(gofmt -l pkg services); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet over the workspace
	$(GO) vet -tags '$(GOTAGS)' work

staticcheck: $(BIN)/staticcheck ## staticcheck over every module
	@for m in $(MODULES); do echo "staticcheck $$m"; (cd $$m && $(BIN)/staticcheck -tags '$(GOTAGS)' ./...) || exit 1; done

vulncheck: $(BIN)/govulncheck $(BIN)/vulndb/index/db.json ## govulncheck over every module, against the pinned database
	@for m in $(MODULES); do echo "govulncheck $$m"; (cd $$m && $(BIN)/govulncheck -tags '$(GOTAGS)' -db file://$(BIN)/vulndb ./...) || exit 1; done

$(BIN)/govulncheck:
	GOBIN=$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

$(BIN)/vulndb/index/db.json:
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) \
	  -vulns $$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv -out $(BIN)/vulndb

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

migrate: build ## apply schema migrations to DATABASE_URL
	$(BIN)/bbs migrate

clean: ## remove build output and the local SQLite board
	rm -rf $(BIN) bbs.db bbs.db-shm bbs.db-wal

SOAK_TIME    ?= 10m
SOAK_SEED    ?= 0
SOAK_TIMEOUT ?= 60m
.PHONY: soak
soak: ## randomized model test: 3 replicas, random writes, clients and faults for SOAK_TIME (10m); SOAK_SEED=N repeats a run (0: random)
	SOAK_TIME=$(SOAK_TIME) SOAK_SEED=$(SOAK_SEED) $(GO) test -count=1 -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' -v ./services/soak

FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: ## run every fuzz test (every func Fuzz* in pkg/) for FUZZTIME each
	@grep -rl --include='*_test.go' '^func Fuzz' pkg | while read -r f; do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
	    echo "fuzz $$t ($$(dirname $$f))"; \
	    $(GO) test -tags '$(GOTAGS)' -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) "./$$(dirname $$f)" || exit 1; \
	  done; \
	done