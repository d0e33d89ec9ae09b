#!/usr/bin/env python3
"""Fails when a file of one layer of userspace/ includes a header of a layer it may not use.

The layers and what each one stands on are in userspace/layers.txt (the same table
CMakeLists.txt builds the libraries from). A layer may include its own headers and those
of every layer reachable from the ones it names. Every #include of every file below
userspace/ is checked, headers too (a header is compiled only where it is included, so
the compiler alone would not see a header of a low layer that reaches up). A directory
that is not in the table is an error as well: a new layer is added to the table first.

Usage: check-layers.py USERSPACE_DIR      exit 0: clean; 1: each violation on stderr
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
SOURCE_EXT = ('.h', '.hpp', '.cpp', '.cc', '.c', '.inc', '.in')
# Generated headers and the one layer that may include each (not the layers above it).
GENERATED = {
    'schedscope.skel.h': 'probe',
    'syscall_table.inc': 'probe',
    'perfetto_trace.pb.h': 'analysis',
}


def read_table(path):
    below = {}
    order = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            name, sep, rest = line.partition(':')
            name = name.strip()
            if not sep or not re.fullmatch(r'[a-z_]+', name):
                sys.exit(f'{path}:{n}: expected "layer: layers below it"')
            for b in rest.split():
                if b not in below:
                    sys.exit(f'{path}:{n}: {name} stands on {b}, which is not listed above it')
            below[name] = rest.split()
            order.append(name)
    reach = {}
    for name in order:
        r = {name}
        for b in below[name]:
            r |= reach[b]
        reach[name] = r
    return order, below, reach


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = os.path.abspath(sys.argv[1])
    table = os.path.join(root, 'layers.txt')
    order, below, reach = read_table(table)
    rel = lambda p: os.path.relpath(p, os.path.dirname(root))
    errors = []
    for d in sorted(os.listdir(root)):
        full = os.path.join(root, d)
        if not os.path.isdir(full):
            continue
        if d not in reach:
            errors.append(f'{rel(full)}/: a directory that is not a layer; add it to {rel(table)}')
            continue
        for dirpath, _, files in os.walk(full):
            for fn in sorted(files):
                if not fn.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, fn)
                with open(path, errors='replace') as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        inc = m.group(2)
                        target = None
                        local = os.path.normpath(os.path.join(dirpath, inc))
                        if m.group(1) == '"' and os.path.exists(local) and local.startswith(root + os.sep):
                            target = os.path.relpath(local, root).split(os.sep)[0]
                        elif '/' in inc and inc.split('/')[0] in reach:
                            target = inc.split('/')[0]
                        elif inc in GENERATED:
                            if GENERATED[inc] != d:
                                errors.append(
                                    f'{rel(path)}:{n}: error: layer "{d}" includes "{inc}", a '
                                    f'generated header only layer "{GENERATED[inc]}" may include')
                            continue
                        if target is None or target in reach[d]:
                            continue
                        may = ', '.join(x for x in order if x in reach[d] and x != d) or 'nothing'
                        errors.append(
                            f'{rel(path)}:{n}: error: layer "{d}" includes "{inc}" of layer '
                            f'"{target}", which is not below it ({d} may use: {may}; '
                            f'{rel(table)}, docs/architecture.md)')
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
