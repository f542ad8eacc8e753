# jitkey — build, test and check targets. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
BINARIES := jitkey-relay jitkey-console jitkey-agent jitkey-phone
# Debian packages the tests and the demo use as real components.
APT_PACKAGES := pamtester oathtool qrencode zbar-tools iproute2 \
	gcc libpam0g-dev openssh-server openssh-client sudo libpam-wrapper
GOFLAGS_TEST ?= -race -count=1 -timeout 15m

.PHONY: all build deps test check bench bench-relay fuzz demo vectors clean

all: build

# deps installs what the tests and the demo need on a fresh Debian machine.
deps:
	@./scripts/install-deps.sh $(APT_PACKAGES)
	$(GO) mod download

build:
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do \
		d=$$(find . -path "*/cmd/$$b" -type d | head -n1); \
		if [ -n "$$d" ]; then echo "go build $$d"; $(GO) build -trimpath -o $(BIN)/$$b $$d || exit 1; fi; \
	done
	@echo "gcc pam_jitkey.so"; ./agent/pam/c/build.sh $(BIN)/pam_jitkey.so

test: deps build
	$(GO) test $(GOFLAGS_TEST) ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	$(GO) run ./protocol/internal/vectorgen -check
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-relay: build
	$(GO) run ./relay/cmd/jitkey-relayload

FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

vectors:
	$(GO) run ./protocol/internal/vectorgen

demo: deps build
	@if [ -x ./testbed/demo.sh ]; then ./testbed/demo.sh; else $(GO) run ./testbed/cmd/jitkey-demo; fi

clean:
	rm -rf $(BIN)
