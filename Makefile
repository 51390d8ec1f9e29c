# Tugboat: `make demo` shows it at work, `make test` runs every test tier.
# Everything either needs is built here, from Go modules, into a cache outside
# the work tree (TOOLS_DIR), so a second run builds nothing.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
TOOLS_DIR ?= $(abspath $(shell $(GO) env GOCACHE)/..)/tugboat-tools
export TUGBOAT_TOOLS_DIR := $(TOOLS_DIR)

include hack/tools/versions.env

KUBE_BIN       := $(TOOLS_DIR)/kubernetes-$(KUBERNETES_VERSION)
ETCD_BIN       := $(TOOLS_DIR)/etcd-$(ETCD_VERSION)
PROM_BIN       := $(TOOLS_DIR)/prometheus-$(PROMETHEUS_VERSION)
KWOK_BIN       := $(TOOLS_DIR)/kwok-$(KWOK_VERSION)
CONTROLLER_GEN := $(TOOLS_DIR)/controller-gen-$(CONTROLLER_TOOLS_VERSION)/controller-gen
CRD_REF_DOCS   := $(TOOLS_DIR)/crd-ref-docs-$(CRD_REF_DOCS_VERSION)/crd-ref-docs

TOOL_BINS := $(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/kube-controller-manager $(KUBE_BIN)/kube-scheduler $(KUBE_BIN)/kubectl \
             $(ETCD_BIN)/etcd $(PROM_BIN)/prometheus $(PROM_BIN)/promtool $(KWOK_BIN)/kwok $(CONTROLLER_GEN) $(CRD_REF_DOCS)

# Root packages hold the pure core; they must not import I/O clients.
PURE      := $(addprefix ./,$(wildcard rollout rollout/status analysis traffic shadow notify receiver judge convert))
FORBIDDEN := k8s.io/client-go|sigs.k8s.io/controller-runtime|istio.io/client-go|github.com/prometheus/client_golang|net/http

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: tools
tools: $(TOOL_BINS) ## Build the test servers, kubectl and generators once (about 15 minutes the first time).

$(TOOL_BINS): hack/tools/versions.env
	@hack/tools/install.sh $(TOOLS_DIR) $(notdir $@)

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code, the CRDs in config/crd and the controller's ClusterRole.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=tugboat-controller paths="./rollout/...;./analysis/...;./shadow/...;./notify/...;./receiver/..." output:rbac:artifacts:config=config/rbac

.PHONY: docs
docs: $(CRD_REF_DOCS) ## Regenerate docs/reference: the API from api/'s types, the CLI from kubectl tug's commands; a test fails when either is stale.
	$(GO) test ./api/v1alpha1 ./cmd/kubectl-tug -run '^(TestAPIReference|TestCLIReference)$$' -count=1 -args -update

# The release's version: the git tag at HEAD (git describe), else a development one.
VERSION ?= $(shell git describe --tags --match 'v*' 2>/dev/null || echo v0.0.0-dev)

.PHONY: image
image: ## Build the controller's image without Docker (dist/tugboat-image*, per architecture and as one index) and dist/install.yaml pinned to it (VERSION=vX.Y.Z).
	$(GO) run ./cmd/tugboat-release image --version $(VERSION) --revision $$(git rev-parse HEAD) --created $$(git log -1 --format=%ct) --out dist

.PHONY: release
release: image ## Everything a release ships into dist/: the image and install.yaml (as make image), kubectl-tug for linux and darwin on amd64 and arm64, checksums.txt and plugins/tug.yaml for krew (VERSION=vX.Y.Z).
	$(GO) run ./cmd/tugboat-release plugin --version $(VERSION) --revision $$(git rev-parse HEAD) --created $$(git log -1 --format=%ct) --out dist

.PHONY: build
build: ## Build the controller and the kubectl plugin into bin/.
	$(GO) build -o bin/ ./cmd/...

.PHONY: vet
vet: ## No big or binary files in git, go vet, gofmt and the pure-package import rule.
	@hack/tracked-files.sh
	$(GO) vet ./...
	@bad=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/tools/')); \
		if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	@if $(GO) list -f '{{.ImportPath}}: {{join .Imports " "}}' $(PURE) | grep -E '$(FORBIDDEN)'; then \
		echo "a pure package imports an I/O client (see above)"; exit 1; fi

.PHONY: test
test: tools vet ## Run every test tier against real servers.
	$(GO) test -count=1 -timeout 20m ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s); make test runs their seed corpora.
	@git grep -E '^func Fuzz[A-Za-z0-9_]+' -- '*_test.go' ':!hack/tools' | sed -E 's|^(.*)/[^/]+:func (Fuzz[A-Za-z0-9_]+).*|\1 \2|' | \
	while read -r dir fz; do \
		echo "==> ./$$dir $$fz"; \
		$(GO) test -run "^$$fz$$" -fuzz "^$$fz$$" -fuzztime $(or $(FUZZTIME),30s) ./$$dir || exit 1; \
	done

.PHONY: crash
crash: tools ## Kill the controller at random instants many times over (KILLS=1000, about 30 minutes) and check nothing was lost.
	TUGBOAT_CRASH_KILLS=$(or $(KILLS),1000) $(GO) test -count=1 -v -timeout 90m -run TestKilledAtRandomInstants ./test/crash/

.PHONY: demo
demo: tools ## Bring up the sandbox and show a canary promoted and another rolled back (KEEP=1 leaves it running).
	$(GO) run ./cmd/tugboat-sandbox demo $(if $(KEEP),--keep)

.PHONY: sandbox
sandbox: tools ## Bring up the sandbox with the podinfo example and keep it running.
	$(GO) run ./cmd/tugboat-sandbox up

.PHONY: sandbox-down
sandbox-down: ## Stop a sandbox left running.
	$(GO) run ./cmd/tugboat-sandbox down

.PHONY: clean-tools
clean-tools: ## Remove the built test servers.
	rm -rf $(TOOLS_DIR)

.PHONY: bench
bench: tools ## Measure writes per step, and 500 Rollouts progressing at once (a few minutes).
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/scale/...

.PHONY: bench-quality
bench-quality: tools ## Replay the default canary gate over a synthetic corpus through a real Prometheus and print its table (caught, false rollbacks, detection delay, thin traffic; a few minutes).
	$(GO) test -run '^$$' -bench BenchmarkGateQuality -benchtime 1x -timeout 30m ./bench/quality/
