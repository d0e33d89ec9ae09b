#!/usr/bin/env bash
# Generates vmlinux.h (kernel types for CO-RE) from a BTF file.
# Usage: gen-vmlinux.sh OUT [BTF]   (BTF defaults to /sys/kernel/btf/vmlinux)
# The BPF objects are CO-RE: the header only has to contain the types they use,
# and libbpf relocates field offsets against the running kernel at load time.
set -euo pipefail
out=$1
btf=${2:-/sys/kernel/btf/vmlinux}
if [[ ! -r $btf ]]; then
  echo "gen-vmlinux: $btf not readable: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y needed)" >&2
  exit 1
fi
tmp=$(mktemp "$out.XXXXXX")
bpftool btf dump file "$btf" format c >"$tmp"
mv "$tmp" "$out"
