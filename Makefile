# loadmon — the two commands of the README:
#   make demo   build the library and the Python module into .venv, run examples/demo.py
#   make test   every test: Rust (unit, integration, doc), C, Python, lints, header drift
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
VENV_OK := $(VENV)/.deps-installed
# pyo3 finds the interpreter it builds against here (clippy/cargo on the Python crate).
export PYO3_PYTHON := $(abspath $(PY))

.PHONY: help demo test python rust-test py-test lint c-lib c-test c-demo header install system-deps fuzz soak bench bench-tiny release-bin image container-test

PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR   := $(firstword $(subst ., ,$(VERSION)))
# Cargo's output directory: target/, or $CARGO_TARGET_DIR when it is set.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LIBDIR  := $(TARGET_DIR)/debug
CBUILD  := $(TARGET_DIR)/c
CFLAGS_BASE   := -std=c11 -Wall -Wextra -Werror -g
CFLAGS_STRICT := $(CFLAGS_BASE) -Iinclude
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer
RPATH   := -Wl,-rpath,$(abspath $(LIBDIR))

help:
	@echo "make demo   - build everything into .venv and run python examples/demo.py"
	@echo "make test   - run every test (Rust, C, Python, lints, containers)"
	@echo "make image  - build the loadmon container image (loadmon:$(VERSION))"

$(VENV_OK): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.5,<2" "pytest>=7" "mypy>=1.8"
	touch $@

# Builds the Rust extension and installs `loadmon` into .venv (editable).
python: $(VENV_OK)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet

demo: python
	$(PY) examples/demo.py

# The engine alone (no default features) must build cleanly and pull none of the CLI's,
# HTTP's or reports' crates; the docs must build without a warning.
ENGINE_ONLY_FORBIDDEN := clap|indicatif|tracing-subscriber|axum|hyper|csv
lint: $(VENV_OK)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p loadmon --lib --no-default-features -- -D warnings
	@if cargo tree -p loadmon -e normal --no-default-features --prefix none | grep -E '^($(ENGINE_ONLY_FORBIDDEN)) '; then \
		echo "lint: the engine-only build pulls a crate it must not (above)"; exit 1; fi
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p loadmon --quiet

rust-test: system-deps
	cargo test --workspace --exclude loadmon-python

# The Python tests, then the typing checks: the package and a usage file under mypy --strict,
# and the stubs of the native module against the built module (stubtest).
py-test: python
	$(PY) -m pytest -q
	$(PY) -m mypy --strict python/loadmon tests/python/typing_usage.py
	$(PY) -m mypy.stubtest loadmon

# libloadmon.so and libloadmon.a (debug build, for the tests and the C demo). The library's
# SONAME is libloadmon.so.$(MAJOR): programs linked against it look for that name at run time.
c-lib:
	cargo build -p loadmon-c
	ln -sf libloadmon.so $(LIBDIR)/libloadmon.so.$(MAJOR)

# Regenerates include/loadmon.h from the code (the test suite fails if it is stale).
header:
	LOADMON_BLESS=1 cargo test -p loadmon-c --test header

c-demo: c-lib
	@mkdir -p $(CBUILD)
	$(CC) $(CFLAGS_STRICT) examples/demo.c -L$(LIBDIR) -lloadmon $(RPATH) -lpthread -o $(CBUILD)/demo
	$(CBUILD)/demo $(DEMO_ARGS)

# Debian packages some tests need (valgrind, pkg-config, iproute2 for the network-namespace
# test, fio for the benchmarks, promtool from prometheus for the /metrics check, chromium for
# the dashboard test, script from bsdutils for the terminal test); installed only when
# missing, without recommended packages (prometheus alone would pull in node-exporter).
system-deps:
	@missing=""; \
	command -v valgrind >/dev/null || missing="$$missing valgrind"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v fio >/dev/null || missing="$$missing fio"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v script >/dev/null || missing="$$missing bsdutils"; \
	command -v xmllint >/dev/null || missing="$$missing libxml2-utils"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# C tests: ASan + UBSan suite, the demo under valgrind, a static link, C++ header check,
# C++ callbacks that catch their exceptions (ASan + UBSan), and an install + pkg-config build.
c-test: c-lib system-deps
	@mkdir -p $(CBUILD)
	readelf -d $(LIBDIR)/libloadmon.so | grep -q 'Library soname: \[libloadmon.so.$(MAJOR)\]'
	$(CC) $(CFLAGS_STRICT) $(SANITIZE) tests/c/test_loadmon.c -L$(LIBDIR) -lloadmon $(RPATH) -lpthread -o $(CBUILD)/test_loadmon
	ASAN_OPTIONS=detect_leaks=1 $(CBUILD)/test_loadmon
	$(CC) $(CFLAGS_STRICT) examples/demo.c -L$(LIBDIR) -lloadmon $(RPATH) -lpthread -o $(CBUILD)/demo
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 $(CBUILD)/demo --quick > $(CBUILD)/demo-valgrind.out
	grep -c "Test status:   PASS" $(CBUILD)/demo-valgrind.out | grep -qx 3
	$(CC) $(CFLAGS_STRICT) examples/demo.c $(LIBDIR)/libloadmon.a -lpthread -ldl -lm -o $(CBUILD)/demo_static
	$(CBUILD)/demo_static --quick | grep -c "Test status:   PASS" | grep -qx 3
	$(CXX) -std=c++17 -Wall -Wextra -Werror -Iinclude tests/c/header_check.cpp -L$(LIBDIR) -lloadmon $(RPATH) -o $(CBUILD)/header_check
	$(CBUILD)/header_check
	$(CXX) -std=c++17 -Wall -Wextra -Werror -Iinclude $(SANITIZE) tests/c/cpp_callbacks.cpp -L$(LIBDIR) -lloadmon $(RPATH) -lpthread -o $(CBUILD)/cpp_callbacks
	ASAN_OPTIONS=detect_leaks=1 $(CBUILD)/cpp_callbacks
	rm -rf $(CBUILD)/prefix
	$(MAKE) --no-print-directory install PREFIX=$(abspath $(CBUILD)/prefix) PROFILE=debug
	! grep -q rpath $(CBUILD)/prefix/lib/pkgconfig/loadmon.pc
	test "$$(readlink $(CBUILD)/prefix/lib/libloadmon.so)" = libloadmon.so.$(MAJOR)
	test "$$(readlink $(CBUILD)/prefix/lib/libloadmon.so.$(MAJOR))" = libloadmon.so.$(VERSION)
	PKG_CONFIG_PATH=$(abspath $(CBUILD)/prefix)/lib/pkgconfig sh -c '$(CC) $(CFLAGS_BASE) examples/demo.c $$(pkg-config --cflags --libs loadmon) -lpthread -o $(CBUILD)/demo_pc'
	readelf -d $(CBUILD)/demo_pc | grep -q 'Shared library: \[libloadmon.so.$(MAJOR)\]'
	LD_LIBRARY_PATH=$(abspath $(CBUILD)/prefix)/lib $(CBUILD)/demo_pc --quick | grep -c "Test status:   PASS" | grep -qx 3
	@echo "c-test: all C checks passed"

# Bounded coverage-guided fuzz runs (libFuzzer via cargo fuzz): the line decoder + parser, and
# the verify block header decoder + checker.
# cargo fuzz needs nightly flags: RUSTC_BOOTSTRAP lets the one stable toolchain accept them.
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	RUSTC_BOOTSTRAP=1 cargo fuzz run line_decoder -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1
	RUSTC_BOOTSTRAP=1 cargo fuzz run block_decoder -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

# The benchmark suite: writes BENCHMARKS.md (about 15 minutes). `make test` runs it once at a
# tiny size (bench-tiny) so it cannot rot, without judging speed.
bench: python system-deps
	$(PY) benches/bench.py --output BENCHMARKS.md

bench-tiny: python system-deps
	$(PY) benches/bench.py --tiny --output target/bench-tiny.md

# 1,000 clients for 60 s (see scripts/soak.sh); not part of `make test`.
soak:
	scripts/soak.sh

# Installs the header, both libraries and loadmon.pc under $(PREFIX): libloadmon.so.$(VERSION),
# with the symlinks libloadmon.so.$(MAJOR) (the SONAME, what programs load) and libloadmon.so
# (what -lloadmon links). The .pc file has no rpath: outside the linker's default paths, run
# ldconfig or set LD_LIBRARY_PATH.
PROFILE ?= release
install:
	cargo build -p loadmon-c $(if $(filter release,$(PROFILE)),--release,)
	install -d $(PREFIX)/include $(PREFIX)/lib/pkgconfig
	install -m 644 include/loadmon.h $(PREFIX)/include/
	install -m 755 $(TARGET_DIR)/$(PROFILE)/libloadmon.so $(PREFIX)/lib/libloadmon.so.$(VERSION)
	ln -sf libloadmon.so.$(VERSION) $(PREFIX)/lib/libloadmon.so.$(MAJOR)
	ln -sf libloadmon.so.$(MAJOR) $(PREFIX)/lib/libloadmon.so
	install -m 644 $(TARGET_DIR)/$(PROFILE)/libloadmon.a $(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' bindings/c/loadmon.pc.in > $(PREFIX)/lib/pkgconfig/loadmon.pc

# --- Containers (see Containerfile, deploy/ and the README's "Containers and clusters") ---
# No registry here, so no Rust builder image: the host builds the release binary,
# deploy/image/assemble.sh puts it and the libraries it links into a build context, and
# `docker build -f Containerfile` makes the image FROM scratch.
IMAGE ?= loadmon:$(VERSION)
CONTAINER_DEPS := $(VENV)/.container-deps-installed

release-bin:
	cargo build --release --bin loadmon

image: release-bin
	deploy/image/assemble.sh $(TARGET_DIR)/release/loadmon $(TARGET_DIR)/image-context
	docker build -f Containerfile --build-arg VERSION=$(VERSION) -t $(IMAGE) $(TARGET_DIR)/image-context

$(CONTAINER_DEPS): $(VENV_OK)
	$(PY) -m pip install --quiet "pyyaml>=6" "kubernetes-validate>=1.29"
	touch $@

# The container tests (tests/containers): the image, docker-compose with 3 workers (barrier,
# plan, report; then a worker killed and one cut off), a single-node Swarm stack, and the
# Kubernetes manifests against the compose file. They build and remove an image of their own
# (loadmon:test-<random>) and remove every container, network, volume and stack they make.
container-test: release-bin $(CONTAINER_DEPS)
	LOADMON_BIN=$(TARGET_DIR)/release/loadmon $(PY) -m pytest -v -rA -s --durations=0 \
		-p no:cacheprovider tests/containers

test: lint rust-test c-test py-test bench-tiny container-test
	@echo "make test: all suites passed"
