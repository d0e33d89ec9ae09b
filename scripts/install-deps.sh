#!/usr/bin/env bash
# Installs every Debian package schedscope's build, tests, workloads and demo need.
# Idempotent: when everything is present it only checks (well under a second).
set -euo pipefail

PKGS=(
  clang llvm make cmake g++ pkg-config          # compilers and build
  libbpf-dev bpftool                            # BPF loading and skeletons
  libelf-dev libdw-dev zlib1g-dev               # ELF / DWARF
  libcli11-dev nlohmann-json3-dev               # CLI and JSON
  libncurses-dev libzstd-dev                    # live view, recordings
  libprotobuf-dev protobuf-compiler             # Perfetto export
  libgtest-dev libgmock-dev                     # unit tests
  golang-go                                     # Go workloads (go1.19)
  tmux procps python3                           # UI and e2e tests, process tools
  ccache                                        # faster rebuilds (used when present)
  openjdk-17-jdk-headless systemtap-sdt-dev     # USDT e2e: a JVM with hotspot probes, javac; sys/sdt.h
  wrk bpftrace linux-perf                       # make bench: load generator, alternatives
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Optional: a second Go toolchain, go1.23 from bookworm-backports, builds the workloads
# that exercise the runtime's 1.20+ layouts (Makefile GO123_WORKLOADS). Without it those
# tests skip; nothing else depends on it. Backports are pinned low by apt (priority
# 100): nothing else is upgraded from them.
OPT_GO=golang-1.23-go
OPT_STAMP=/var/tmp/schedscope-golang-1.23-unavailable  # a failed try is not repeated for a day
if ! dpkg-query -W -f='${Status}' "$OPT_GO" 2>/dev/null | grep -q "install ok installed" &&
  [[ -z $(find "$OPT_STAMP" -mmin -1440 2>/dev/null) ]]; then
  SUDO=$([[ $(id -u) -ne 0 ]] && echo sudo || true)
  export DEBIAN_FRONTEND=noninteractive
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
      "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
      $SUDO tee /etc/apt/sources.list.d/schedscope-backports.sources >/dev/null || true
    $SUDO apt-get update -qq || true
  fi
  echo "install-deps: installing $OPT_GO (optional)" >&2
  if ! $SUDO apt-get install -y -qq --no-install-recommends "$OPT_GO" >/dev/null; then
    echo "install-deps: $OPT_GO is not available here; the go1.23 workload tests will skip" >&2
    touch "$OPT_STAMP" 2>/dev/null || true
  fi
fi

# tracefs is used by `doctor` and by perf-based benchmarks; tp_btf programs do not need it.
if [[ $(id -u) -eq 0 && ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
exit 0
