/* The BPF target has no asm/ headers of its own; these stand in for the host's so the
 * linux/ uapi headers compile for -target bpf the same way on every host architecture. */
#include <asm-generic/types.h>
