# secretmount — every target is a line or two; the work lives in Go and in hack/.
SHELL := /bin/bash
GO ?= go
BIN ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/secretmount/secretmount/cmd/secretmount/app.version=$(VERSION)
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/test/')
FUZZTIME ?= 30s
export SECRETMOUNT_CACHE ?= $(HOME)/.cache/secretmount

.DEFAULT_GOAL := help

help: ## Show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/secretmount
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/secretmount ./cmd/secretmount

demo: ## The whole product on loopback: real API server, moto, Vault, PostgreSQL, driver and sync (needs root)
	bash hack/demo.sh

setup: ## Install or build the real components the tests use (cached under $SECRETMOUNT_CACHE)
	bash hack/setup/all.sh

# test-integration runs every package with the integration tag, so each tier runs once:
# unit tests, csi-sanity and the tests against real components. While `make test` runs,
# the tests record the secret values they seed and every log, event, metric and error of
# secretmount under LEAK_DIR (test/harness, SECRETMOUNT_LEAK_DIR); leak-scan, last,
# fails if any value shows up there. Prerequisites run in order (no -j).
LEAK_DIR ?= $(CURDIR)/$(BIN)/tmp/leaks
test: export SECRETMOUNT_LEAK_DIR = $(LEAK_DIR)
test: leak-reset setup verify test-integration fuzz-quick bench-quick leak-scan ## Everything CI runs
	@echo "make test: all tiers passed"

leak-reset:
	rm -rf $(LEAK_DIR) && mkdir -p $(LEAK_DIR)

leak-scan: ## Scan what the last `make test` recorded (LEAK_DIR) for the test secret values
	$(GO) run ./test/leakscan $(LEAK_DIR)

test-unit: ## Unit tests: pure, fast, no real components
	$(GO) test -count=1 $(UNIT_PKGS)

sanity: ## csi-sanity against the real driver on a temp socket
	$(GO) test -count=1 ./test/sanity/...

# test-e2e runs only the real-node end-to-end package (test/e2e: kubelet, containerd and pods
# with secretmount volumes; needs root). Its tests carry the integration tag, so
# test-integration, and with it make test, runs them too.
test-e2e: setup ## Real-node end-to-end: kubelet and containerd run pods with secretmount volumes (needs root)
	$(GO) test -count=1 -v -timeout 15m -tags integration ./test/e2e/

test-integration: setup ## Tests against real kube-apiserver+etcd, Vault, moto and PostgreSQL (and the unit tests)
	$(GO) test -count=1 -timeout 40m -tags integration ./...

# bench prints the Go benchmarks, then the side-by-side table against the upstream driver
# (test/bench, needs root); BENCH_QUICK=1 runs a one-minute subset of both.
bench: setup ## Go benchmarks and the side-by-side table against the upstream driver (BENCH_QUICK=1: 1-minute subset)
	$(GO) test -run '^$$' -bench . -benchmem $(if $(BENCH_QUICK),-benchtime 1x) $(UNIT_PKGS)
	$(GO) test -count=1 -v -timeout 30m -tags bench -run TestSideBySide ./test/bench/

bench-quick: setup ## The side-by-side table's one-minute subset (part of make test)
	BENCH_QUICK=1 $(GO) test -count=1 -v -timeout 10m -tags bench -run TestSideBySide ./test/bench/

fuzz: ## Run every fuzz target for FUZZTIME each
	bash hack/fuzz.sh $(FUZZTIME)

fuzz-quick: ## Run every fuzz target briefly (part of make test)
	bash hack/fuzz.sh 10s

manifests: ## Render deploy/ from charts/secretmount (Helm Go SDK)
	bash hack/manifests.sh

verify: ## gofmt, go vet, go.mod tidy, deploy/ up to date
	bash hack/verify.sh

clean: ## Remove local build outputs (the component cache stays; rm -rf $SECRETMOUNT_CACHE for that)
	rm -rf $(BIN)

.PHONY: help build demo setup test leak-reset leak-scan test-unit sanity test-integration bench bench-quick fuzz fuzz-quick manifests verify clean
