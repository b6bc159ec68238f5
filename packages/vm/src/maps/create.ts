// createMap(): BPF_MAP_CREATE. The checks are those of map_create() in kernel/bpf/syscall.c and
// of each map type's map_alloc_check/map_alloc, in the kernel's order, so a definition the
// kernel refuses is refused here with the same errno and the reason the kernel code gives.

import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { ArrayMap } from './array.js';
import { BloomFilterMap } from './bloom_filter.js';
import { CpuMap, DevMap, DevMapHash, XskMap } from './dev_maps.js';
import { FdArrayMap, HashOfMapsMap, PerfEventArrayMap } from './fd_maps.js';
import { HashMap } from './hashtab.js';
import { LpmTrieMap } from './lpm_trie.js';
import { MapCreateError, mapTypeName, roundUp8, type BpfMap } from './map.js';
import { QueueStackMap } from './queue_stack.js';
import { RingbufMap } from './ringbuf.js';
import {
  BPF_F_ACCESS_MASK,
  BPF_F_INNER_MAP,
  BPF_F_MMAPABLE,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  BPF_F_PRESERVE_ELEMS,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY,
  BPF_F_WRONLY_PROG,
  BPF_F_ZERO_SEED,
  E2BIG,
  EBADF,
  EINVAL,
  ENOTSUPP,
} from './uapi.js';

export interface CreateMapOptions {
  /** Possible CPUs: per-CPU maps keep this many copies of each value. */
  cpus?: number;
  /** CONFIG_NR_CPUS, cpumap's limit on max_entries (8192 on common distribution kernels). */
  nrCpus?: number;
}

const T = BPF_MAP_TYPE;
/** PCPU_MIN_UNIT_SIZE: the largest per-CPU allocation. */
const PCPU_MIN_UNIT_SIZE = 32 << 10;
/** KMALLOC_MAX_SIZE on x86-64 (1 << (MAX_PAGE_ORDER + PAGE_SHIFT)). */
const KMALLOC_MAX_SIZE = 1 << 22;
const INT_MAX = 0x7fffffff;
const ARRAY_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
const HTAB_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
const QUEUE_STACK_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
const LPM_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
const BLOOM_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | BPF_F_ACCESS_MASK;
const DEV_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;

/** Thrown by the checks below; createMap() adds the map's name. */
class Refused {
  constructor(
    readonly reason: string,
    readonly errno: number,
  ) {}
}

function refuse(errno: number, reason: string): never {
  throw new Refused(reason, -errno);
}

/** bpf_map_flags_access_ok(): a program cannot be denied both reading and writing. */
function accessOk(flags: number): boolean {
  return (flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) !== (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG);
}

function checkFlags(flags: number, mask: number, type: string): void {
  if (flags & ~mask) refuse(EINVAL, `map_flags 0x${flags.toString(16)} has flags ${type} maps do not take (0x${(flags & ~mask).toString(16)})`);
  if (!accessOk(flags)) refuse(EINVAL, 'BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together');
}

function need(ok: boolean, reason: string): void {
  if (!ok) refuse(EINVAL, reason);
}

// array_map_alloc_check() and array_map_alloc()
function checkArray(d: MapDef): void {
  const percpu = d.type === T.percpu_array;
  need(d.maxEntries !== 0, 'max_entries is 0');
  need(d.keySize === 4, `key_size is ${d.keySize}, array maps take 4-byte keys`);
  need(d.valueSize !== 0, 'value_size is 0');
  checkFlags(d.flags, ARRAY_CREATE_FLAG_MASK, 'array');
  if (percpu && d.flags & BPF_F_NUMA_NODE) refuse(EINVAL, 'per-CPU arrays take no NUMA node');
  if (d.type !== T.array && d.flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP)) refuse(EINVAL, 'BPF_F_MMAPABLE and BPF_F_INNER_MAP are for plain arrays only');
  if (d.type !== T.perf_event_array && d.flags & BPF_F_PRESERVE_ELEMS) refuse(EINVAL, 'BPF_F_PRESERVE_ELEMS is for perf event arrays only');
  if (d.valueSize > INT_MAX) refuse(E2BIG, `value_size ${d.valueSize} is too big`);
  if (percpu && roundUp8(d.valueSize) > PCPU_MIN_UNIT_SIZE) refuse(E2BIG, `per-CPU value_size ${d.valueSize} is over ${PCPU_MIN_UNIT_SIZE} bytes`);
}

// fd_array_map_alloc_check()
function checkFdArray(d: MapDef): void {
  need(d.valueSize === 4, `value_size is ${d.valueSize}, fd arrays hold 4-byte file descriptors`);
  if (d.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) refuse(EINVAL, 'program access flags are not supported for fd arrays');
  checkArray(d);
}

// htab_map_alloc_check() and htab_map_alloc()
function checkHash(d: MapDef, cpus: number): void {
  const percpu = d.type === T.percpu_hash || d.type === T.lru_percpu_hash;
  const lru = d.type === T.lru_hash || d.type === T.lru_percpu_hash;
  const percpuLru = (d.flags & BPF_F_NO_COMMON_LRU) !== 0;
  const prealloc = !(d.flags & BPF_F_NO_PREALLOC);
  checkFlags(d.flags, HTAB_CREATE_FLAG_MASK, 'hash');
  if (!lru && percpuLru) refuse(EINVAL, 'BPF_F_NO_COMMON_LRU is for LRU maps only');
  if (lru && !prealloc) refuse(ENOTSUPP, 'LRU maps are always preallocated (BPF_F_NO_PREALLOC)');
  if (d.flags & BPF_F_NUMA_NODE && (percpu || percpuLru)) refuse(EINVAL, 'per-CPU maps take no NUMA node');
  need(d.maxEntries !== 0, 'max_entries is 0');
  need(d.keySize !== 0, 'key_size is 0');
  need(d.valueSize !== 0, 'value_size is 0');
  if (d.keySize + d.valueSize >= KMALLOC_MAX_SIZE - 48) refuse(E2BIG, `key_size + value_size ${d.keySize + d.valueSize} is too big for an element`);
  if (percpu && roundUp8(d.valueSize) > PCPU_MIN_UNIT_SIZE) refuse(E2BIG, `per-CPU value_size ${d.valueSize} is over ${PCPU_MIN_UNIT_SIZE} bytes`);
  // htab_map_alloc(): the bucket array (16-byte buckets, a power of two) must fit in u32.
  let max = d.maxEntries;
  if (percpuLru) max = Math.ceil(max / cpus) * cpus;
  if (max > 2 ** 31) refuse(E2BIG, `max_entries ${d.maxEntries} is over 2^31`);
  let buckets = 1;
  while (buckets < max) buckets *= 2;
  if (buckets > Math.floor(0xffffffff / 16)) refuse(E2BIG, `${buckets} hash buckets overflow u32`);
}

// trie_alloc()
function checkLpm(d: MapDef): void {
  need(d.maxEntries !== 0, 'max_entries is 0');
  need((d.flags & BPF_F_NO_PREALLOC) !== 0, 'LPM tries must be created with BPF_F_NO_PREALLOC');
  checkFlags(d.flags, LPM_CREATE_FLAG_MASK, 'LPM trie');
  need(d.keySize >= 4 + 1 && d.keySize <= 4 + 256, `key_size is ${d.keySize}, LPM trie keys are a u32 prefixlen and 1 to 256 data bytes`);
  need(d.valueSize >= 1 && d.valueSize <= KMALLOC_MAX_SIZE - 256 - 48, `value_size ${d.valueSize} is out of range`);
}

// queue_stack_map_alloc_check()
function checkQueueStack(d: MapDef): void {
  need(d.maxEntries !== 0, 'max_entries is 0');
  need(d.keySize === 0, `key_size is ${d.keySize}, queues and stacks have no keys (key_size 0)`);
  need(d.valueSize !== 0, 'value_size is 0');
  checkFlags(d.flags, QUEUE_STACK_CREATE_FLAG_MASK, 'queue/stack');
  if (d.valueSize > KMALLOC_MAX_SIZE) refuse(E2BIG, `value_size ${d.valueSize} is too big`);
}

// ringbuf_map_alloc()
function checkRingbuf(d: MapDef): void {
  checkFlags(d.flags, BPF_F_NUMA_NODE, 'ring buffer');
  need(d.keySize === 0 && d.valueSize === 0, 'ring buffers have key_size and value_size 0');
  const n = d.maxEntries;
  need(n > 0 && (n & (n - 1)) === 0 && n % 4096 === 0, `max_entries ${n} is the ring's byte size and must be a power of 2 and a multiple of the 4096-byte page`);
}

// dev_map_init_map()
function checkDevmap(d: MapDef): void {
  need(d.maxEntries !== 0, 'max_entries is 0');
  need(d.keySize === 4, `key_size is ${d.keySize}, devmaps take 4-byte keys`);
  need(d.valueSize === 4 || d.valueSize === 8, `value_size is ${d.valueSize}, devmap values are an ifindex (4) or ifindex and program fd (8)`);
  if (d.flags & ~DEV_CREATE_FLAG_MASK) refuse(EINVAL, `map_flags 0x${d.flags.toString(16)} has flags devmaps do not take`);
  if (d.type === T.devmap_hash && d.maxEntries > 2 ** 31) refuse(EINVAL, `max_entries ${d.maxEntries} is over 2^31`);
}

// cpu_map_alloc()
function checkCpumap(d: MapDef, nrCpus: number): void {
  need(d.maxEntries !== 0, 'max_entries is 0');
  need(d.keySize === 4, `key_size is ${d.keySize}, cpumaps take 4-byte keys`);
  need(d.valueSize === 4 || d.valueSize === 8, `value_size is ${d.valueSize}, cpumap values are a queue size (4) or queue size and program fd (8)`);
  if (d.flags & ~BPF_F_NUMA_NODE) refuse(EINVAL, `map_flags 0x${d.flags.toString(16)} has flags cpumaps do not take`);
  if (d.maxEntries > nrCpus) refuse(E2BIG, `max_entries ${d.maxEntries} is over NR_CPUS ${nrCpus}`);
}

// xsk_map_alloc()
function checkXskmap(d: MapDef): void {
  need(d.maxEntries !== 0 && d.keySize === 4 && d.valueSize === 4, 'xskmaps take 4-byte keys and values and max_entries > 0');
  if (d.flags & ~DEV_CREATE_FLAG_MASK) refuse(EINVAL, `map_flags 0x${d.flags.toString(16)} has flags xskmaps do not take`);
}

// bloom_map_alloc()
function checkBloom(d: MapDef): void {
  need(d.keySize === 0, `key_size is ${d.keySize}, bloom filters have no keys (key_size 0)`);
  need(d.valueSize !== 0, 'value_size is 0');
  need(d.maxEntries !== 0, 'max_entries is 0');
  checkFlags(d.flags, BLOOM_CREATE_FLAG_MASK, 'bloom filter');
  const extra = (d as MapDef & { mapExtra?: number }).mapExtra ?? 0;
  need((extra & ~0xf) === 0, `map_extra ${extra} has bits above the number of hash functions (0xf)`);
}

function build(d: MapDef, cpus: number, nrCpus: number): BpfMap {
  // map_create(): read-only and write-only for user space at once makes no file mode.
  if ((d.flags & (BPF_F_RDONLY | BPF_F_WRONLY)) === (BPF_F_RDONLY | BPF_F_WRONLY)) refuse(EINVAL, 'BPF_F_RDONLY and BPF_F_WRONLY together');
  const extra = (d as MapDef & { mapExtra?: number }).mapExtra ?? 0;
  if (extra && d.type !== T.bloom_filter) refuse(EINVAL, 'map_extra is only for bloom filters');
  switch (d.type) {
    case T.array:
      checkArray(d);
      return new ArrayMap(d, cpus);
    case T.percpu_array:
      checkArray(d);
      return new ArrayMap(d, cpus, true);
    case T.hash:
    case T.percpu_hash:
    case T.lru_hash:
    case T.lru_percpu_hash: {
      checkHash(d, cpus);
      const percpu = d.type === T.percpu_hash || d.type === T.lru_percpu_hash;
      const lru = d.type === T.lru_hash || d.type === T.lru_percpu_hash;
      return new HashMap(d, cpus, { percpu, lru });
    }
    case T.lpm_trie:
      checkLpm(d);
      return new LpmTrieMap(d, cpus);
    case T.prog_array:
      checkFdArray(d);
      return new FdArrayMap(d, cpus);
    case T.perf_event_array:
      checkFdArray(d);
      return new PerfEventArrayMap(d, cpus);
    case T.array_of_maps:
      checkFdArray(d);
      // bpf_map_meta_alloc(inner_map_fd): no inner map, no fd.
      if (!d.inner) refuse(EBADF, 'array_of_maps needs an inner map definition');
      return new FdArrayMap(d, cpus);
    case T.hash_of_maps:
      need(d.valueSize === 4, `value_size is ${d.valueSize}, hash_of_maps values are 4-byte map fds`);
      checkHash(d, cpus);
      if (!d.inner) refuse(EBADF, 'hash_of_maps needs an inner map definition');
      return new HashOfMapsMap(d, cpus);
    case T.queue:
    case T.stack:
      checkQueueStack(d);
      return new QueueStackMap(d, cpus, d.type === T.stack);
    case T.ringbuf:
      checkRingbuf(d);
      return new RingbufMap(d, cpus);
    case T.devmap:
      checkDevmap(d);
      return new DevMap(d, cpus);
    case T.devmap_hash:
      checkDevmap(d);
      return new DevMapHash(d, cpus);
    case T.cpumap:
      checkCpumap(d, nrCpus);
      return new CpuMap(d, cpus);
    case T.xskmap:
      checkXskmap(d);
      return new XskMap(d, cpus);
    case T.bloom_filter:
      checkBloom(d);
      return new BloomFilterMap(d, cpus);
  }
  const name = mapTypeName(d.type);
  if (name) throw new MapCreateError(d.name, `map type ${name} (${d.type}) is not supported by Rewind`, 0);
  refuse(EINVAL, `unknown map type ${d.type}`);
}

/**
 * Creates a map as BPF_MAP_CREATE would, or throws MapCreateError with the kernel's errno and
 * reason. Global data sections (def.globalData) are one-entry arrays holding initialValue.
 */
export function createMap(def: MapDef, opts: CreateMapOptions = {}): BpfMap {
  const cpus = opts.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1) throw new MapCreateError(def.name, `cpus must be a positive integer, not ${cpus}`, 0);
  try {
    if (def.globalData) {
      if (def.type !== T.array || def.maxEntries !== 1) throw new Refused(`global data must be a one-entry array, not type ${def.type} with ${def.maxEntries} entries`, -EINVAL);
      if (def.initialValue && def.initialValue.length > def.valueSize) {
        throw new Refused(`initial value of ${def.initialValue.length} bytes does not fit value_size ${def.valueSize}`, -EINVAL);
      }
    }
    return build(def, cpus, opts.nrCpus ?? 8192);
  } catch (e) {
    if (e instanceof Refused) throw new MapCreateError(def.name, e.reason, e.errno);
    throw e;
  }
}
