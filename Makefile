# ptsync — build, lint and test. `make test` is what CI runs (.ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Real peers the tests start themselves: OpenLDAP's slapd (+ slapadd,
# ldapsearch), a Samba AD domain controller, promtool, and chromium
# (headless) for the status page's browser test.
TEST_PACKAGES := slapd ldap-utils samba-ad-dc prometheus chromium
TEST_COMMANDS := /usr/sbin/slapd /usr/bin/ldapsearch /usr/sbin/samba /usr/bin/promtool /usr/bin/chromium

.PHONY: all build test test-deps lint bench clean

all: lint build test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ptsync ./cmd/ptsync

# test-deps installs the test peers with apt-get when any is missing. Debian
# starts a service when its package is installed; a policy-rc.d stops that, so
# no system slapd or samba takes the ports the tests use.
test-deps:
	@missing=0; for c in $(TEST_COMMANDS); do [ -x $$c ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing test peers: $(TEST_PACKAGES)"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		made_policy=0; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod +x /usr/sbin/policy-rc.d && made_policy=1; \
		fi; \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES) >/dev/null; \
		rc=$$?; [ $$made_policy = 1 ] && $$SUDO rm -f /usr/sbin/policy-rc.d; \
		exit $$rc; \
	fi

# deploy/ is a module of its own: the Kubernetes types, Helm and the PromQL
# parser that check the deploy files stay out of ptsync's dependencies. Its
# tests read the chart through helm and build ptsync, files go test's cache
# cannot see, hence -count=1.
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -timeout 30m ./...
	cd deploy && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 10m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) build -o bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	cd deploy && $(GO) vet ./... && ../bin/staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./pagertree/ ./sync/ ./sources/msgraph/ ./sources/okta/

clean:
	rm -rf bin
