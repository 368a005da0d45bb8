# extauthz: `make run` serves the quick-start policy; `make test` installs
# what the tests need and runs every check CI runs.

GO                  ?= go
TOOLS               ?= $(HOME)/.cache/extauthz-tools
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO       := $(shell $(GO) list -m -f '{{.Version}}' google.golang.org/protobuf)
STATICCHECK         := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
PROTOC_GEN_GO_BIN   := $(TOOLS)/protoc-gen-go-$(PROTOC_GEN_GO)/protoc-gen-go
BIN                 := bin/extauthz
PKG                 := github.com/extauthz/extauthz
PROTO_SRC           := proto/extauthz/policy/v1/policy.proto
FUZZTIME            ?= 20s

.PHONY: all build run test setup deps-apt deps-npm spire-tools lint vet fmt-check staticcheck proto proto-check unit deploy-check bench-smoke fuzz bench image clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/extauthz

# Serve the quick-start policy (keys included, no network needed).
run: build
	./$(BIN) serve --policy examples/quickstart/policy.yaml \
		--grpc-addr 127.0.0.1:9001 --http-addr 127.0.0.1:9090 --log-format text

test: setup proto-check lint unit deploy-check bench-smoke

# Everything the tests use, installed by the project itself: Debian packages
# (protoc, redis-server) when missing, the npm jose signer, Go tools and the
# SPIRE binaries cached outside the repo by version (a cold SPIRE build takes
# about 15 minutes on 2 cores; later runs reuse it).
setup: deps-apt deps-npm $(STATICCHECK) $(PROTOC_GEN_GO_BIN) spire-tools

spire-tools:
	EXTAUTHZ_TOOLS=$(TOOLS) ./test/spire/build.sh

deps-apt:
	@missing=""; \
	command -v protoc >/dev/null || missing="$$missing protobuf-compiler"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

deps-npm: test/jose/node_modules/.installed

test/jose/node_modules/.installed: test/jose/package.json test/jose/package-lock.json
	npm ci --prefix test/jose --no-audit --no-fund --loglevel=error
	touch $@

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(PROTOC_GEN_GO_BIN):
	GOBIN=$(dir $@) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)

lint: vet fmt-check staticcheck

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$') $$(git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

proto: $(PROTOC_GEN_GO_BIN)
	protoc --plugin=protoc-gen-go=$(PROTOC_GEN_GO_BIN) --go_out=. --go_opt=module=$(PKG) -I proto $(PROTO_SRC)

# The committed generated code must match the schema.
proto-check: $(PROTOC_GEN_GO_BIN)
	@tmp=$$(mktemp -d); \
	protoc --plugin=protoc-gen-go=$(PROTOC_GEN_GO_BIN) --go_out=$$tmp --go_opt=module=$(PKG) -I proto $(PROTO_SRC) && \
	if ! diff -r $$tmp/proto proto -x '*.proto' >/dev/null; then \
		echo "generated code is stale: run make proto"; diff -r $$tmp/proto proto -x '*.proto'; rm -rf $$tmp; exit 1; \
	fi; rm -rf $$tmp; echo "generated code is up to date"

unit:
	$(GO) test -race -count=1 ./...

# Envoy, Kubernetes, Istio and Helm configs, validated offline in their own
# module (deploy/validate) so the project's go.mod stays lean.
deploy-check: $(STATICCHECK)
	STATICCHECK=$(STATICCHECK) TOOLS=$(TOOLS) ./deploy/check.sh

# Every in-process benchmark once, so none can rot.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime=1x ./... >/dev/null

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# The whole comparison (floor, every scenario, OPA-Envoy and Heimdall built
# from the Go module proxy and cached): writes docs/benchmarks.md and .svg.
bench: deps-apt
	EXTAUTHZ_TOOLS=$(TOOLS) $(GO) run ./internal/bench/cmd/extauthz-bench -out docs/benchmarks.md

image:
	docker build --build-arg VERSION=$$(git describe --tags --always --dirty) -t extauthz:dev .

clean:
	rm -rf bin test/jose/node_modules
