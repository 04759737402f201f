# Berth: make help lists the targets.

GO        ?= go
BIN       := bin
PLUGINS   := $(notdir $(patsubst %/main.go,%,$(wildcard plugins/*/main.go)))
# The API secret of `make run` (the API refuses every call without one).
CORE_SECRET ?= berth-dev-secret
# Optional configuration file for `make run`; without it Berth uses its
# defaults and, with no Redis URL, the embedded in-memory backend.
CONFIG    ?=
# Where `make run` starts the scanner adapter, and its API key.
SCANNER_ADDR    ?= 127.0.0.1:8090
SCANNER_API_KEY ?= berth-dev-scanner-key
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help build run test fuzz chaos bench proto lint deps clean

help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## Build bin/berth, bin/berthctl, bin/scanner (the scanner adapter) and every plugin into bin/plugins/.
	$(GO) build -o $(BIN)/berth ./host
	$(GO) build -o $(BIN)/berthctl ./host/cmd/berthctl
	$(GO) build -o $(BIN)/scanner ./plugins/scan/adapter
	@mkdir -p $(BIN)/plugins
	@for p in $(PLUGINS); do echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; $(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; done
	install -m 755 plugins/pydemo/pydemo $(BIN)/plugins/pydemo

run: build ## Start Berth with its plugins (embedded Redis unless one is configured), and the scanner adapter beside it.
	@./$(BIN)/scanner -addr $(SCANNER_ADDR) -api-key $(SCANNER_API_KEY) -advisories plugins/scan/adapter/testdata/advisories & \
	  scanner=$$!; trap 'kill $$scanner 2>/dev/null' EXIT INT TERM; \
	  echo "scanner adapter on http://$(SCANNER_ADDR) (API key $(SCANNER_API_KEY))"; \
	  CORE_SECRET=$(CORE_SECRET) BERTH_PLUGINS_DIR=$(BIN)/plugins ./$(BIN)/berth $(if $(CONFIG),-c $(CONFIG))

test: deps build lint ## Vet, check formatting, run every test with the race detector, then each fuzz target briefly.
	/usr/bin/python3 -m unittest discover -s sdk/python/tests -t sdk/python
	/usr/bin/python3 -m unittest discover -s plugins/pydemo
	BERTH_TEST_PLUGINS=$(CURDIR)/$(BIN)/plugins $(GO) test -race -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory fuzz FUZZ_FAST=20000 FUZZ_SLOW=500
	$(GO) run ./host/internal/chaos -short -bin $(BIN)

# Fuzz targets, as package:target; their seed corpora are in each
# package's testdata/fuzz (go test runs those as plain tests too). The
# plugins' Validate targets start a server per input: slower. Budgets are
# counts of inputs, not durations: Go 1.26's fuzz coordinator can fail a
# target spuriously with "context deadline exceeded" at the end of a
# -fuzztime duration (golang/go#75804).
FUZZ_HOST := host/internal/api:FuzzRequests host/internal/job:FuzzCheck host/internal/job:FuzzValidID \
	host/internal/periodic:FuzzParse host/internal/redisx:FuzzParseURL
FUZZ_PLUGINS := $(foreach p,demo scheduler webhook slack replication gc scan,plugins/$(p):FuzzValidate)
FUZZ_FAST ?= 2000000
FUZZ_SLOW ?= 20000

fuzz: ## Fuzz each target (FUZZ_FAST / FUZZ_SLOW inputs each; make test runs a short round).
	@run() { pkg=$${1%%:*}; target=$${1#*:}; echo "fuzz $$pkg $$target, $$2 inputs"; \
	  $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $${2}x ./$$pkg >/tmp/berth-fuzz.log 2>&1 || { cat /tmp/berth-fuzz.log; exit 1; }; }; \
	for f in $(FUZZ_HOST); do run $$f $(FUZZ_FAST) || exit 1; done; \
	for f in $(FUZZ_PLUGINS); do run $$f $(FUZZ_SLOW) || exit 1; done

chaos: deps build ## Inject faults into real hosts on real Redis under load; one row per fault (about 4 minutes).
	$(GO) run ./host/internal/chaos -bin $(BIN)

bench: deps ## Measure Berth against raw gocraft/work on a real Redis (about 2½ minutes).
	$(GO) run ./host/internal/bench -out $(BIN)/bench.json

proto: ## Regenerate sdk/proto, sdk/python's modules and the bench's transport stand-in from their .proto (needs protoc).
	@command -v protoc >/dev/null || { $(SUDO) apt-get install -y protobuf-compiler || { $(SUDO) apt-get update && $(SUDO) apt-get install -y protobuf-compiler; }; }
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
	       --plugin=protoc-gen-go-grpc=$$($(GO) tool -n protoc-gen-go-grpc) \
	       -I sdk/proto --go_out=sdk/proto --go_opt=paths=source_relative \
	       --go-grpc_out=sdk/proto --go-grpc_opt=paths=source_relative sdk/proto/berth.proto
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) \
	       --plugin=protoc-gen-go-grpc=$$($(GO) tool -n protoc-gen-go-grpc) \
	       -I host/internal/bench/transport --go_out=host/internal/bench/transport --go_opt=paths=source_relative \
	       --go-grpc_out=host/internal/bench/transport --go-grpc_opt=paths=source_relative host/internal/bench/transport/transport.proto
	sh sdk/python/generate.sh

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would rewrite:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Debian packages the tests start real servers from: command=package.
DEBS := redis-server=redis-server redis-sentinel=redis-sentinel docker-registry=docker-registry chromium=chromium
# Debian's packages of the Python sdk (sdk/python) and plugins/pydemo;
# Debian's own /usr/bin/python3 runs them (PyPI is not needed).
PYDEBS := python3-grpcio python3-protobuf python3-cryptography python3-grpc-tools

deps: ## Install what the tests need (Debian's redis-server, docker-registry, chromium and the Python sdk's packages).
	@missing=""; for d in $(DEBS); do command -v $${d%%=*} >/dev/null || missing="$$missing $${d#*=}"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian's$$missing (the tests start their own servers)"; \
	    $(SUDO) apt-get install -y $$missing >/dev/null || { $(SUDO) apt-get update >/dev/null && $(SUDO) apt-get install -y $$missing >/dev/null; } || exit 1; \
	  fi
	@/usr/bin/python3 -c 'import grpc, google.protobuf, cryptography, grpc_tools' 2>/dev/null || { \
	  echo "installing Debian's $(PYDEBS) (the Python sdk and pydemo)"; \
	  $(SUDO) apt-get install -y $(PYDEBS) >/dev/null || { $(SUDO) apt-get update >/dev/null && $(SUDO) apt-get install -y $(PYDEBS) >/dev/null; } || exit 1; }
	@redis-server --version
	@docker-registry --version
	@chromium --version 2>/dev/null

clean: ## Remove bin/.
	rm -rf $(BIN)
