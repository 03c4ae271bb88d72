# feedline: the two commands a fresh machine needs are `make run` and `make test`.
GO ?= go
FEEDLINE_ADMIN_KEY ?= dev-admin-key
FEEDLINE_TOKEN_KEY ?= dev-token-key-not-secret
export FEEDLINE_ADMIN_KEY FEEDLINE_TOKEN_KEY

.PHONY: run test test-fast build vet lint bench bench-go bench-e2e clean services services-down

run:
	$(GO) run ./cmd/feedline serve

# The race detector and a shuffled test order are the house rules; test-fast
# leaves both out for a quick local loop.
test: vet
	$(GO) test -race -shuffle=on -count=1 -timeout 60m ./...

test-fast: vet
	$(GO) test -count=1 -timeout 40m ./...

vet:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# golangci-lint (pinned; built from the Go module proxy into bin/ the first
# time): depguard keeps the import arrows, see .golangci.yml.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := bin/golangci-lint-$(GOLANGCI_LINT_VERSION)

lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...

$(GOLANGCI_LINT):
	mkdir -p bin/lint-tmp
	GOBIN=$(CURDIR)/bin/lint-tmp $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv bin/lint-tmp/golangci-lint $@
	rmdir bin/lint-tmp

build:
	$(GO) build -o bin/feedline ./cmd/feedline

bench: bench-go bench-e2e

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./...

bench-e2e: build
	./bin/feedline bench --rows 1000000

# The real servers the tests use, on loopback, in the background; writes
# services.env (". ./services.env" before "make test"). Ports and engines:
# README, "Tests against real servers".
services:
	deploy/services/services.sh up

services-down:
	deploy/services/services.sh down

clean:
	rm -rf bin data
