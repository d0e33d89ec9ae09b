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
  golang-1.23-go                                # a second toolchain (bookworm-backports):
                                                # ground truth on the 1.20+ runtime layouts
  tmux procps python3                           # UI and e2e tests, process tools
  ccache                                        # faster rebuilds (used when present)
  openjdk-17-jdk-headless                       # USDT e2e: a JVM with hotspot probes, javac
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
  # golang-1.23-go lives in bookworm-backports. Backports are pinned low by apt
  # (priority 100): nothing else is upgraded from them.
  if [[ " ${missing[*]} " == *" golang-1.23-go "* ]] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" | $SUDO tee /etc/apt/sources.list.d/schedscope-backports.sources >/dev/null
  fi
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tracefs is used by `doctor` and by perf-based benchmarks; tp_btf programs do not need it.
if [[ $(id -u) -eq 0 && ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
exit 0
