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
# make fuzz runs each fuzz target FUZZTIME; make test's fuzz-smoke splits
# FUZZ_SMOKE_BUDGET seconds among the targets (at least 1s each).
FUZZTIME            ?= 20s
FUZZ_SMOKE_BUDGET   ?= 40

.PHONY: all build run test setup deps-apt deps-npm spire-tools lint vet fmt-check staticcheck proto proto-check unit deploy-check bench-smoke fuzz fuzz-smoke bench image clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/extauthz

# Serve the quick-start policy (keys included, no network needed).
run: build
	./$(BIN) serve --policy examples/quickstart/policy.yaml \
		--grpc-addr 127.0.0.1:9001 --http-addr 127.0.0.1:9090 --log-format text

test: setup proto-check lint unit deploy-check bench-smoke fuzz-smoke

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

# Every fuzz target (func FuzzX(f *testing.F) in a package's tests) fuzzed
# beyond its seed corpus: FUZZTIME each for make fuzz, FUZZ_SMOKE_BUDGET
# split among them for make test. Each package's instrumented test binary
# is built once; the generated corpus is go's own ($GOCACHE/fuzz), shared
# with go test -fuzz. A failing input is written to the package's
# testdata/fuzz/<Target>/ and fails the run once every target has run. A
# target that fails without writing one (Go 1.26's coordinator can report
# its own -fuzztime deadline as a failure, go.dev/issue/75804) runs once
# more, and fails the run only if it fails again.
fuzz: FUZZ_EACH = $(FUZZTIME)
fuzz-smoke: FUZZ_EACH =
fuzz fuzz-smoke:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cache=$$($(GO) env GOCACHE)/fuzz; \
	$(GO) list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' ./... >$$tmp/pkgs; \
	while read -r pkg dir files; do \
		[ -n "$$files" ] || continue; \
		for f in $$(cd "$$dir" && sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)([A-Za-z_]* \*testing\.F).*/\1/p' $$files); do \
			echo "$$pkg $$dir $$f"; \
		done; \
	done <$$tmp/pkgs >$$tmp/targets; \
	n=$$(wc -l <$$tmp/targets); \
	[ "$$n" -gt 0 ] || { echo "fuzz: no fuzz targets"; exit 0; }; \
	each="$(FUZZ_EACH)"; \
	if [ -z "$$each" ]; then ms=$$(( $(FUZZ_SMOKE_BUDGET) * 1000 / n )); [ "$$ms" -ge 1000 ] || ms=1000; each=$${ms}ms; fi; \
	echo "fuzz: $$n targets, $$each each beyond the seed corpus"; \
	start=$$(date +%s); failed=""; \
	while read -r pkg dir f; do \
		bin=$$tmp/$$(echo "$$pkg" | tr / _).test; \
		[ -x "$$bin" ] || $(GO) test -c -fuzz=. -o "$$bin" "$$pkg" </dev/null; \
		echo "fuzz $$pkg $$f ($$each)"; \
		for try in 1 2; do \
			before=$$(ls "$$dir/testdata/fuzz/$$f" 2>/dev/null | wc -l); \
			if (cd "$$dir" && "$$bin" -test.run '^$$' -test.fuzz "^$$f$$" -test.fuzztime "$$each" \
				-test.fuzzcachedir "$$cache/$$pkg" -test.timeout 10m </dev/null); then break; fi; \
			after=$$(ls "$$dir/testdata/fuzz/$$f" 2>/dev/null | wc -l); \
			if [ "$$after" -gt "$$before" ] || [ "$$try" = 2 ]; then failed="$$failed $$pkg.$$f"; break; fi; \
			echo "fuzz: $$f failed without writing a failing input (Go's coordinator races the -fuzztime deadline, go.dev/issue/75804); once more"; \
		done; \
	done <$$tmp/targets; \
	echo "fuzz: $$n targets in $$(( $$(date +%s) - start ))s"; \
	if [ -n "$$failed" ]; then \
		echo "fuzz: FAILED:$$failed"; \
		echo "fuzz: each failing input is in its package's testdata/fuzz/<Target>/ (named above);"; \
		echo "fuzz: go test -run '<Target>/<file>' reproduces it; commit it with the fix (README, Development)"; \
		exit 1; \
	fi

# The whole comparison (floor, every scenario, OPA-Envoy and Heimdall built
# from the Go module proxy and cached): writes docs/benchmarks.md and .svg.
bench: deps-apt
	EXTAUTHZ_TOOLS=$(TOOLS) $(GO) run ./bench/cmd/extauthz-bench -out docs/benchmarks.md

image:
	docker build --build-arg VERSION=$$(git describe --tags --always --dirty) -t extauthz:dev .

clean:
	rm -rf bin test/jose/node_modules
