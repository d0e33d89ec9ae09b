/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* <asm/errno.h> for the BPF target (usdt.bpf.h -> <linux/errno.h> -> here): the arch
 * directory (/usr/include/x86_64-linux-gnu/asm) is not on clang -target bpf's path. */
#include <asm-generic/errno.h>
