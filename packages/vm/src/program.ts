import type { Bytecode } from './isa.js';

/** Program types Rewind runs, named as libbpf's section prefixes and bpftool's `type` names. */
export type ProgType = 'xdp' | 'tc' | 'socket' | 'raw' | 'tracepoint' | 'kprobe' | 'perf_event' | 'cgroup_skb';

/** Kernel map type ids, enum bpf_map_type in include/uapi/linux/bpf.h. */
export const BPF_MAP_TYPE = {
  unspec: 0,
  hash: 1,
  array: 2,
  prog_array: 3,
  perf_event_array: 4,
  percpu_hash: 5,
  percpu_array: 6,
  stack_trace: 7,
  cgroup_array: 8,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  devmap: 14,
  sockmap: 15,
  cpumap: 16,
  xskmap: 17,
  sockhash: 18,
  cgroup_storage: 19,
  reuseport_sockarray: 20,
  percpu_cgroup_storage: 21,
  queue: 22,
  stack: 23,
  sk_storage: 24,
  devmap_hash: 25,
  struct_ops: 26,
  ringbuf: 27,
  inode_storage: 28,
  task_storage: 29,
  bloom_filter: 30,
  user_ringbuf: 31,
  cgrp_storage: 32,
  arena: 33,
} as const;
export type MapTypeName = keyof typeof BPF_MAP_TYPE;

/** A map as the program declares it (BTF-defined `.maps`, legacy `maps`, or global data). */
export interface MapDef {
  /** The map's name: the variable name, or the section name for global data (`.rodata`, `.data.foo`). */
  name: string;
  /** enum bpf_map_type. */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** map_flags (BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG, ...). */
  flags: number;
  /** For array_of_maps / hash_of_maps: the inner map's definition. */
  inner?: MapDef;
  /** BTF type ids of key and value in the object's `.BTF`, when known. */
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
  /** Initial contents of a global-data map (`.data`, `.rodata`): one value of valueSize bytes. */
  initialValue?: Uint8Array;
  /** Global data maps (`.rodata`, `.data`, `.bss` and named variants). */
  globalData?: boolean;
  /** Initial slots of prog_array and map-in-map maps from BTF `values = { [i] = &x }`: index → program or map name. */
  initialSlots?: { index: number; name: string }[];
}

/** A function (the program's entry, or a `.text` subprogram) laid out at pcs [start, end). */
export interface FuncSym {
  name: string;
  start: number;
  end: number;
}

/** A source location from BTF line_info, with the source line text the object carries. */
export interface LineInfo {
  pc: number;
  file: string;
  line: number;
  col: number;
  text: string;
}

/**
 * A loaded program: bytecode in the layout the kernel would see (subprograms appended after
 * the program that calls them, as libbpf lays them out), with relocations resolved.
 *
 * lddw with src = BPF_PSEUDO_MAP_IDX (5) has imm = an index into `maps`; with
 * src = BPF_PSEUDO_MAP_IDX_VALUE (6), imm = an index into `maps` and the second slot's imm
 * the offset into the map's value. BPF_PSEUDO_FUNC (4) has imm = the relative pc of a callback,
 * as the kernel expects it.
 */
export interface Program {
  name: string;
  /** ELF section the program came from, when it came from an object. */
  section?: string;
  type: ProgType;
  code: Bytecode;
  /** Functions in pc order; the first is the entry. */
  funcs: FuncSym[];
  maps: MapDef[];
  /** BTF line info, sorted by pc. */
  lines?: LineInfo[];
  license?: string;
}
