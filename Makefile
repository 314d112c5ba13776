# xvrrp: the two commands are `make demo` and `make test` (see README.md).
# Both install what is missing first (as root, on Debian/Ubuntu).

SHELL := /bin/bash
.DEFAULT_GOAL := build

# rustup installs cargo here; make it visible to every recipe.
export PATH := $(HOME)/.cargo/bin:$(PATH)

CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR := $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
CONFDIR ?= /etc/xvrrp

# Build (clang/llvm/libbpf/libelf for the XDP program and libxdp), lab and
# tests (iproute2, ethtool, ping, arping), captures (tshark, tcpdump), the
# generator of `xvrrp bench forward` (netsniff-ng's trafgen; arping and ping
# time its latency cells), and the peers the comparison benchmarks run
# (keepalived, frr).
APT_PACKAGES := clang llvm libelf-dev zlib1g-dev pkg-config m4 libbpf-dev \
	keepalived frr tshark tcpdump netsniff-ng iputils-ping iproute2 arping ethtool

.PHONY: deps build test lint demo install uninstall clean

## deps: install the missing apt packages, and Rust if cargo is absent
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if ! command -v cargo >/dev/null 2>&1; then \
	  for p in curl ca-certificates; do \
	    dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	  done; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: missing packages:$$missing (run as root)" >&2; exit 1; fi; \
	  echo "make deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update && apt-get install -y --no-install-recommends $$missing; \
	fi
	@if ! command -v cargo >/dev/null 2>&1; then \
	  echo "make deps: installing Rust with rustup"; \
	  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | \
	    sh -s -- -y --profile minimal --default-toolchain stable -c clippy,rustfmt; \
	fi

## build: release build of the whole workspace
build:
	$(CARGO) build --release --workspace

## test: unit, property and network-namespace integration tests, then lints
test: deps build
	$(CARGO) test --release --workspace
	$(MAKE) --no-print-directory lint

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

## demo: lab + two appliances + traffic + a failover, narrated
demo: deps build
	./target/release/xvrrp demo

## install: binary, example config (never overwritten), systemd unit
install: build
	install -D -m 0755 target/release/xvrrp $(DESTDIR)$(SBINDIR)/xvrrp
	install -d -m 0755 $(DESTDIR)$(CONFDIR)
	@if [ -e $(DESTDIR)$(CONFDIR)/xvrrp.toml ]; then \
	  echo "keeping existing $(DESTDIR)$(CONFDIR)/xvrrp.toml"; \
	else \
	  install -m 0644 xvrrp.example.toml $(DESTDIR)$(CONFDIR)/xvrrp.toml; \
	fi
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/sbin/xvrrp|$(SBINDIR)/xvrrp|g' -e 's|/etc/xvrrp/|$(CONFDIR)/|g' \
	  deploy/xvrrp.service > $(DESTDIR)$(UNITDIR)/xvrrp.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/xvrrp.service
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then \
	  systemctl daemon-reload; \
	  echo "installed; start with: systemctl enable --now xvrrp"; \
	fi

## uninstall: remove the binary and unit (the config stays)
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/xvrrp $(DESTDIR)$(UNITDIR)/xvrrp.service

clean:
	$(CARGO) clean
