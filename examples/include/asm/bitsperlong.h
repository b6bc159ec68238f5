#ifndef __ASM_BPF_BITSPERLONG_H
#define __ASM_BPF_BITSPERLONG_H
/* BPF registers and pointers are 64 bits wide. */
#define __BITS_PER_LONG 64
#include <asm-generic/bitsperlong.h>
#endif
