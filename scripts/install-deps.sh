#!/usr/bin/env bash
# Installs every Debian package schedscope's build, tests, workloads and demo need.
# Idempotent: when everything is present it only checks (well under a second).
#   install-deps.sh                    check, install what is missing
#   install-deps.sh --dry-run          say what would be installed or written; change nothing
#   install-deps.sh --backports-source print the apt source the go1.23 toolchain would come
#                                      from (deb822), derived from the machine's own sources
# Environment (for tests): SCHEDSCOPE_APT_DIR (default /etc/apt), SCHEDSCOPE_OS_CODENAME
# (default VERSION_CODENAME of /etc/os-release).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-install}
case $mode in
  install | --dry-run | --backports-source) ;;
  *) echo "usage: install-deps.sh [--dry-run | --backports-source]" >&2; exit 2 ;;
esac
dry=$([[ $mode == --dry-run ]] && echo 1 || echo 0)
APT_DIR=${SCHEDSCOPE_APT_DIR:-/etc/apt}
CODENAME=${SCHEDSCOPE_OS_CODENAME:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}
SUDO=$([[ $(id -u) -ne 0 ]] && echo sudo || true)

# The apt source files in the order apt reads them: sources.list, then sources.list.d/
# *.list and *.sources (other names, e.g. *.disabled, are ignored like apt does).
source_files() {
  local f
  [[ -f $APT_DIR/sources.list ]] && echo "$APT_DIR/sources.list"
  for f in "$APT_DIR"/sources.list.d/*.list "$APT_DIR"/sources.list.d/*.sources; do
    [[ -f $f ]] && echo "$f"
  done
  return 0
}

# Every active "deb" entry as one line "URI<TAB>SUITE<TAB>SIGNED_BY" (SIGNED_BY "-" when
# absent or an inline key), from one-line (*.list) and deb822 (*.sources) files.
deb_entries() {
  local f
  while read -r f; do
    case $f in
      *.sources)
        awk 'BEGIN { RS = ""; FS = "\n" }
          {
            types = uris = suites = ""; signed = "-"; enabled = 1
            for (i = 1; i <= NF; i++) {
              line = $i
              if (line ~ /^#/ || line ~ /^[ \t]/) continue
              key = tolower(line); sub(/:.*/, "", key)
              val = line; sub(/^[^:]*:[ \t]*/, "", val)
              if (key == "types") types = val
              else if (key == "uris") uris = val
              else if (key == "suites") suites = val
              else if (key == "enabled" && tolower(val) == "no") enabled = 0
              else if (key == "signed-by" && val != "") signed = val
            }
            if (!enabled || (" " types " ") !~ / deb /) next
            nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
            for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++)
              if (u[a] != "" && s[b] != "") printf "%s\t%s\t%s\n", u[a], s[b], signed
          }' "$f"
        ;;
      *)
        awk '$1 == "deb" {
            signed = "-"; i = 2
            if ($2 ~ /^\[/) {  # options: [arch=amd64 signed-by=/x.gpg]
              for (; i <= NF; i++) {
                o = $i; gsub(/[\[\]]/, "", o)
                if (o ~ /^signed-by=/) { sub(/^signed-by=/, "", o); signed = o }
                if ($i ~ /\]$/) { i++; break }
              }
            }
            if (i + 1 <= NF) printf "%s\t%s\t%s\n", $i, $(i + 1), signed
          }' "$f"
        ;;
    esac
  done < <(source_files)
}

# The deb822 stanza of <codename>-backports on the mirror the machine already uses for
# <codename> (its first active "deb URI <codename>" entry); deb.debian.org when there is
# none. Prints nothing when backports are already configured.
backports_source() {
  local entries uri signed
  [[ -n $CODENAME ]] || { echo "install-deps: unknown Debian codename (/etc/os-release)" >&2; return 1; }
  entries=$(deb_entries)
  if awk -F'\t' -v s="$CODENAME-backports" '$2 == s { found = 1 } END { exit !found }' <<<"$entries"; then
    return 0
  fi
  uri=$(awk -F'\t' -v s="$CODENAME" '$2 == s { print $1; exit }' <<<"$entries")
  signed=$(awk -F'\t' -v s="$CODENAME" '$2 == s { print $3; exit }' <<<"$entries")
  if [[ -z $uri ]]; then
    echo "install-deps: no \"deb URI $CODENAME\" entry in $APT_DIR; using http://deb.debian.org/debian" >&2
    uri=http://deb.debian.org/debian
  fi
  [[ -n $signed && $signed != - ]] || signed=/usr/share/keyrings/debian-archive-keyring.gpg
  printf '%s\n' "Types: deb" "URIs: $uri" "Suites: $CODENAME-backports" "Components: main" "Signed-By: $signed"
}

if [[ $mode == --backports-source ]]; then
  backports_source
  exit $?
fi

PKGS=(
  clang llvm make cmake g++ pkg-config          # compilers and build
  libclang-rt-dev                               # libFuzzer and ASan runtimes (make fuzz, the fuzz tier)
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
  libcpp-httplib-dev                            # agent: the /metrics HTTP server
  prometheus                                    # agent e2e: a real Prometheus scraping it; promtool
  libcap2-bin                                   # agent e2e: capsh runs it with only its unit's capabilities
  python3-yaml                                  # agent e2e: reads the DaemonSet
  podman runc mmdebstrap                        # container e2e: a Debian 12 rootfs, the image built and run
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# npm downloads the Go binaries of npm packages the tests use (make npm-bins). Node.js
# from NodeSource ships its own npm; Debian's nodejs needs the npm package.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if ((dry)); then
    echo "install-deps: (dry run) apt-get install ${missing[*]}"
  else
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || true
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# The USDT tests need a CPython built with its python:* probes (an ELF .note.stapsdt);
# a pyenv or self-built python3 first on PATH usually has none. Debian's python3.11 does.
py=$(command -v /usr/bin/python3 || command -v python3 || echo python3)
if ! why=$("$py" "$here/../tests/fixtures/usdt_python.py" 2>&1); then
  echo "install-deps: $why" >&2
  echo "install-deps: installing python3.11 (Debian's, with USDT probes)" >&2
  if ((dry)); then
    echo "install-deps: (dry run) apt-get install python3.11"
  else
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq --no-install-recommends python3.11 >/dev/null ||
      echo "install-deps: python3.11 is not available here; the CPython USDT tests will skip" >&2
  fi
fi

# Optional: a second Go toolchain, go1.23 from bookworm-backports, builds the workloads
# that exercise the runtime's 1.20+ layouts (Makefile GO123_WORKLOADS). Without it those
# tests skip; nothing else depends on it. Backports are pinned low by apt (priority
# 100): nothing else is upgraded from them.
OPT_GO=golang-1.23-go
OPT_STAMP=/var/tmp/schedscope-golang-1.23-unavailable  # a failed try is not repeated for a day
if ! dpkg-query -W -f='${Status}' "$OPT_GO" 2>/dev/null | grep -q "install ok installed" &&
  [[ -z $(find "$OPT_STAMP" -mmin -1440 2>/dev/null) ]]; then
  export DEBIAN_FRONTEND=noninteractive
  # Backports from the mirror this machine already uses (a machine behind its own mirror
  # keeps using it); nothing is written when they are configured already.
  stanza=$(backports_source || true)
  if [[ -n $stanza ]]; then
    if ((dry)); then
      echo "install-deps: (dry run) would write $APT_DIR/sources.list.d/schedscope-backports.sources:"
      echo "$stanza"
    else
      echo "$stanza" | $SUDO tee "$APT_DIR/sources.list.d/schedscope-backports.sources" >/dev/null || true
      $SUDO apt-get update -qq || true
    fi
  fi
  echo "install-deps: installing $OPT_GO (optional)" >&2
  if ((dry)); then
    echo "install-deps: (dry run) apt-get install $OPT_GO"
  elif ! $SUDO apt-get install -y -qq --no-install-recommends "$OPT_GO" >/dev/null; then
    echo "install-deps: $OPT_GO is not available here; the go1.23 workload tests will skip" >&2
    touch "$OPT_STAMP" 2>/dev/null || true
  fi
fi

# tracefs is used by `doctor` and by perf-based benchmarks; tp_btf programs do not need it.
if ((!dry)) && [[ $(id -u) -eq 0 && ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
exit 0
