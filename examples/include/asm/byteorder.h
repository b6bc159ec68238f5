#ifndef __ASM_BPF_BYTEORDER_H
#define __ASM_BPF_BYTEORDER_H
/* -target bpf follows the host: bpfel on little-endian hosts, bpfeb on big-endian ones. */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#include <linux/byteorder/big_endian.h>
#else
#include <linux/byteorder/little_endian.h>
#endif
#endif
