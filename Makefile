# ecsmesh — `make run` starts the mesh locally, `make test` is what CI runs.
GO        ?= go
BUILD     := build
GOFLAGS_TEST ?= -timeout 25m
# Tests that need PostgreSQL read this DSN; CI has PostgreSQL on 127.0.0.1:5432.
export ECSMESH_TEST_POSTGRES_DSN ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: all build cp dp dev wasm so test test-unit test-race bench bench-quick fuzz run demo lint images clean gui-screenshots

all: build

build: cp dp dev wasm so

cp:
	$(GO) build -o $(BUILD)/ecsmesh-cp ./controlplane/cmd/ecsmesh-cp

dev:
	$(GO) build -o $(BUILD)/ecsmesh-dev ./internal/dev/cmd/ecsmesh-dev

dp:
	$(GO) build -o $(BUILD)/ecsmesh-dp ./bootstrap/cmd/ecsmesh-dp

wasm:
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $(BUILD)/ecsmesh-filter.wasm ./filter/cmd/wasm

so:
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -o $(BUILD)/ecsmesh-filter.so ./filter/cmd/golang

# Unit, wasm-mode filter, store conformance (SQLite and PostgreSQL) and
# end-to-end tests. Nothing is skipped for a missing dependency.
test: wasm
	ECSMESH_FILTER_WASM=$(CURDIR)/$(BUILD)/ecsmesh-filter.wasm $(GO) test $(GOFLAGS_TEST) ./...

# Every test that needs no PostgreSQL: the same run as make test with the
# PostgreSQL tests skipped (ECSMESH_TEST_NO_POSTGRES=1, see
# controlplane/store/pgtest), for a machine without a database.
test-unit: wasm
	ECSMESH_TEST_NO_POSTGRES=1 ECSMESH_TEST_POSTGRES_DSN= ECSMESH_FILTER_WASM=$(CURDIR)/$(BUILD)/ecsmesh-filter.wasm $(GO) test $(GOFLAGS_TEST) ./...

test-race:
	$(GO) test -race $(GOFLAGS_TEST) ./...

bench: build
	$(GO) run ./bench/cmd/report

bench-quick: wasm
	$(GO) run ./bench/cmd/report -quick

# Each fuzz target for a bounded time (FUZZTIME, default 20s).
FUZZTIME ?= 20s
fuzz:
	@set -e; for spec in $$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/{n[++c]=$$1} /^ok/{for(i=1;i<=c;i++) print $$2":"n[i]; c=0}'); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "== $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# Screenshots of the GUI (build/gui-overview.png, build/gui-dataplane.png),
# taken by its browser test (headless chromium) against a CP with the demo
# mesh.
gui-screenshots:
	@mkdir -p $(BUILD)
	ECSMESH_GUI_SCREENSHOTS=$(CURDIR)/$(BUILD) $(GO) test -count=1 -run '^TestGUIInBrowser$$' ./controlplane/cp/

run: build
	$(BUILD)/ecsmesh-dev run

demo: build
	$(BUILD)/ecsmesh-dev demo

# go.mod/go.sum tidy, go vet, staticcheck (pinned by the tool directive in
# go.mod) and gofmt on every tracked or untracked .go file that exists.
lint:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@out=$$(git ls-files -z -co --exclude-standard '*.go' \
		| xargs -0 -r sh -c 'for f; do if [ -f "$$f" ]; then printf "%s\0" "$$f"; fi; done' sh \
		| xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

images: build
	@if docker info >/dev/null 2>&1; then \
		docker build -f images/sidecar.Dockerfile -t ecsmesh/sidecar:dev . && \
		docker build -f images/controlplane.Dockerfile -t ecsmesh/controlplane:dev . ; \
	else echo "make images: skipped: no Docker engine on this machine (docker info failed)"; fi

clean:
	rm -rf $(BUILD)
