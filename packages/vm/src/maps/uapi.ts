// Constants of the map ABI, as include/uapi/linux/bpf.h and include/uapi/asm-generic/errno*.h
// define them. Map operations return 0 or a negative errno, as the kernel's map ops do.

/** Flags of BPF_MAP_UPDATE_ELEM and bpf_map_update_elem(). */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

/** map_flags of BPF_MAP_CREATE. */
export const BPF_F_NO_PREALLOC = 1 << 0;
export const BPF_F_NO_COMMON_LRU = 1 << 1;
export const BPF_F_NUMA_NODE = 1 << 2;
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_WRONLY = 1 << 4;
export const BPF_F_STACK_BUILD_ID = 1 << 5;
export const BPF_F_ZERO_SEED = 1 << 6;
export const BPF_F_RDONLY_PROG = 1 << 7;
export const BPF_F_WRONLY_PROG = 1 << 8;
export const BPF_F_CLONE = 1 << 9;
export const BPF_F_MMAPABLE = 1 << 10;
export const BPF_F_PRESERVE_ELEMS = 1 << 11;
export const BPF_F_INNER_MAP = 1 << 12;
export const BPF_F_ACCESS_MASK = BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;

/** bpf_perf_event_output() flags: the low 32 bits select the perf event array index. */
export const BPF_F_INDEX_MASK = 0xffffffff;
export const BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK;

/** bpf_ringbuf_output/submit/discard flags. */
export const BPF_RB_NO_WAKEUP = 1 << 0;
export const BPF_RB_FORCE_WAKEUP = 1 << 1;
/** bpf_ringbuf_query() flags. */
export const BPF_RB_AVAIL_DATA = 0;
export const BPF_RB_RING_SIZE = 1;
export const BPF_RB_CONS_POS = 2;
export const BPF_RB_PROD_POS = 3;
/** Ring buffer record header (struct bpf_ringbuf_hdr { u32 len; u32 pg_off; }). */
export const BPF_RINGBUF_BUSY_BIT = 0x80000000;
export const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
export const BPF_RINGBUF_HDR_SZ = 8;

export const EPERM = 1;
export const ENOENT = 2;
export const E2BIG = 7;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EOVERFLOW = 75;
export const EOPNOTSUPP = 95;
/** Kernel-internal "operation not supported" that the bpf() syscall leaks to user space. */
export const ENOTSUPP = 524;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [E2BIG]: 'E2BIG',
  [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL',
  [ENOSPC]: 'ENOSPC',
  [EOVERFLOW]: 'EOVERFLOW',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [ENOTSUPP]: 'ENOTSUPP',
};

/** `-ENOENT` for -2, `0` for 0: how Rewind writes a map operation's result. */
export function errnoName(ret: number): string {
  if (ret === 0) return '0';
  const name = ERRNO_NAMES[Math.abs(ret)];
  return name ? (ret < 0 ? `-${name}` : name) : String(ret);
}
