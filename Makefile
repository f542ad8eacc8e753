# jitkey — build, test and check targets. See README.md.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
BINARIES := jitkey-relay jitkey-console jitkey-agent jitkey-phone
# Debian packages the tests and the demo use as real components.
APT_PACKAGES := pamtester oathtool qrencode zbar-tools iproute2 \
	gcc libpam0g-dev openssh-server openssh-client sudo libpam-wrapper systemd \
	samba samba-ad-dc chromium \
	g++ gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 msitools wixl wine64
GOFLAGS_TEST ?= -race -count=1 -timeout 15m

.PHONY: all build deps test check bench bench-relay fuzz demo vectors clean package winhelper msi wine-test

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
	cd packaging && $(GO) test -count=1 ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	$(GO) generate ./winhelper/... ./relay/client/winudp
	git diff --exit-code -- ':(glob)winhelper/**/zsyscall_windows.go' relay/client/winudp/zsyscall_windows.go
	$(MAKE) winhelper
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	$(GO) run ./protocol/internal/vectorgen -check
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-relay: build
	./scripts/bench-relay.sh $(BIN)

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

# package builds dist/jitkey-agent_$(PKG_VERSION)_amd64.deb (agent, PAM
# module, systemd unit, pam-auth-update profile) and the relay's with nfpm
# (a tool of the packaging/ module, so its dependencies stay out of go.mod).
PKG_VERSION ?= 0.1.0
package: build
	@mkdir -p dist
	$(GO) -C packaging build -o $(BIN)/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	JITKEY_VERSION=$(PKG_VERSION) $(BIN)/nfpm package -f packaging/nfpm-agent.yaml -p deb -t dist/
	JITKEY_VERSION=$(PKG_VERSION) $(BIN)/nfpm package -f packaging/nfpm-relay.yaml -p deb -t dist/
	./packaging/macos/assemble.sh dist/macos $(PKG_VERSION)
	$(MAKE) msi

# macos-plugin builds the authorization plugin (JitkeyLogin.bundle) into
# dist/macos/plugin. ON A MAC ONLY (it needs the macOS SDK); on Linux it
# stops with a message. `make package` assembles the rest of the macOS
# package tree in dist/macos; packaging/macos/build-pkg.sh makes the .pkg
# on a Mac.
.PHONY: macos-plugin
macos-plugin:
	$(MAKE) -C macos/plugin OUT=$(CURDIR)/dist/macos/plugin

# winhelper builds the Windows pieces: the agent (bin/jitkey-agent.exe)
# and the credential provider DLL (bin/jitkey_cp.dll, mingw-w64).
winhelper:
	@mkdir -p $(BIN)
	GOOS=windows GOARCH=amd64 $(GO) build -trimpath -o $(BIN)/jitkey-agent.exe ./agent/cmd/jitkey-agent
	./winhelper/credprov/dll/build.sh $(BIN)/jitkey_cp.dll
	x86_64-w64-mingw32-objdump -p $(BIN)/jitkey_cp.dll | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$$/p'

# msi builds dist/jitkey-$(PKG_VERSION)-x64.msi with wixl and lists its files.
msi: winhelper
	@mkdir -p dist
	./winhelper/msi/build.sh dist/jitkey-$(PKG_VERSION)-x64.msi $(BIN)/jitkey-agent.exe $(BIN)/jitkey_cp.dll $(PKG_VERSION)
	msiinfo export dist/jitkey-$(PKG_VERSION)-x64.msi File

# wine-test runs the provider DLL under Wine with the harness and the
# Windows agent (also part of make test: winhelper/credprov TestWine;
# wine64 is 148 MB to download, 846 MB installed); see README "Windows".
wine-test: winhelper
	./winhelper/credprov/harness/wine-test.sh $(BIN)

clean:
	rm -rf $(BIN) dist
