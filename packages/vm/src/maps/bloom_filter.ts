// BPF_MAP_TYPE_BLOOM_FILTER (kernel/bpf/bloom_filter.c): values are pushed, never stored;
// peek answers "possibly present" (0) or "certainly absent" (-ENOENT). The bit array is sized
// and hashed as the kernel does (jhash2 or jhash of the value, seeded with seed + i for each
// of the nr_hash_funcs functions). The kernel picks a random seed unless the map has
// BPF_F_ZERO_SEED; Rewind always uses seed 0, so its false positives are those of a
// BPF_F_ZERO_SEED map and the same on every run.

import type { MapDef } from '../program.js';
import { BpfMap, type MapEntry } from './map.js';
import { PagedStore } from './paged.js';
import { BPF_ANY, EINVAL, ENOENT, EOPNOTSUPP } from './uapi.js';

function rol32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

const JHASH_INITVAL = 0xdeadbeef;

/** include/linux/jhash.h: __jhash_mix and __jhash_final on a, b, c. */
function mix(s: Uint32Array): void {
  let a = s[0], b = s[1], c = s[2];
  a -= c; a ^= rol32(c, 4); c += b;
  b -= a; b ^= rol32(a, 6); a += c;
  c -= b; c ^= rol32(b, 8); b += a;
  a -= c; a ^= rol32(c, 16); c += b;
  b -= a; b ^= rol32(a, 19); a += c;
  c -= b; c ^= rol32(b, 4); b += a;
  s[0] = a; s[1] = b; s[2] = c;
}

function final(s: Uint32Array): void {
  let a = s[0], b = s[1], c = s[2];
  c ^= b; c -= rol32(b, 14);
  a ^= c; a -= rol32(c, 11);
  b ^= a; b -= rol32(a, 25);
  c ^= b; c -= rol32(b, 16);
  a ^= c; a -= rol32(c, 4);
  b ^= a; b -= rol32(a, 14);
  c ^= b; c -= rol32(b, 24);
  s[0] = a; s[1] = b; s[2] = c;
}

function u32le(k: Uint8Array, i: number): number {
  return (k[i] | (k[i + 1] << 8) | (k[i + 2] << 16) | (k[i + 3] << 24)) >>> 0;
}

/** jhash(): Bob Jenkins' lookup3 over bytes, as the kernel computes it on a little-endian machine. */
export function jhash(k: Uint8Array, length: number, initval: number): number {
  const s = new Uint32Array(3);
  s[0] = s[1] = s[2] = JHASH_INITVAL + length + initval;
  let i = 0;
  while (length > 12) {
    s[0] += u32le(k, i);
    s[1] += u32le(k, i + 4);
    s[2] += u32le(k, i + 8);
    mix(s);
    length -= 12;
    i += 12;
  }
  if (length === 0) return s[2];
  // The tail bytes, k[i + n] shifted into place (the switch of jhash() with its fallthroughs).
  for (let n = length - 1; n >= 0; n--) s[n >> 2] += k[i + n] << ((n & 3) * 8);
  final(s);
  return s[2];
}

/** jhash2(): the same over `length` u32 words. */
export function jhash2(k: Uint8Array, length: number, initval: number): number {
  const s = new Uint32Array(3);
  s[0] = s[1] = s[2] = JHASH_INITVAL + (length << 2) + initval;
  let i = 0;
  while (length > 3) {
    s[0] += u32le(k, i);
    s[1] += u32le(k, i + 4);
    s[2] += u32le(k, i + 8);
    mix(s);
    length -= 3;
    i += 12;
  }
  if (length === 0) return s[2];
  for (let n = length - 1; n >= 0; n--) s[n] += u32le(k, i + 4 * n);
  final(s);
  return s[2];
}

/** The map_extra of a BTF map definition: the number of hash functions (0 = the default, 5). */
export function bloomHashFuncs(def: MapDef): number {
  return ((def as MapDef & { mapExtra?: number }).mapExtra ?? 0) & 0xf || 5;
}

export class BloomFilterMap extends BpfMap {
  readonly nrHashFuncs: number;
  readonly bitsetMask: number;
  private bits: PagedStore;

  constructor(def: MapDef, cpus: number) {
    super(def, cpus);
    this.nrHashFuncs = bloomHashFuncs(def);
    // bloom_map_alloc(): n * k * 7 / 5 bits (7/5 ~ 1/ln 2), rounded up to a power of two of at
    // least BITS_PER_LONG; 2^32 bits when that overflows u32.
    let nrBits = def.maxEntries * this.nrHashFuncs;
    if (nrBits <= 0xffffffff) nrBits = Math.floor(nrBits / 5) * 7;
    if (nrBits > 0xffffffff || nrBits > 2 ** 31) {
      this.bitsetMask = 0xffffffff;
    } else {
      let p = 64;
      while (p < nrBits) p *= 2;
      this.bitsetMask = p - 1;
    }
    this.bits = new PagedStore(Math.ceil((this.bitsetMask + 1) / 8), 1);
  }

  private hash(value: Uint8Array, i: number): number {
    const size = this.def.valueSize;
    const h = size % 4 === 0 ? jhash2(value, size / 4, i) : jhash(value, size, i);
    return (h & this.bitsetMask) >>> 0;
  }

  private testBit(bit: number): boolean {
    const byte = Math.floor(bit / 8);
    return ((this.bits.read(byte, 1)[0] >> (bit & 7)) & 1) === 1;
  }

  // bloom_map_push_elem()
  override push(value: Uint8Array, flags: number): number {
    if (flags !== BPF_ANY) return -EINVAL;
    for (let i = 0; i < this.nrHashFuncs; i++) {
      const bit = this.hash(value, i);
      const byte = Math.floor(bit / 8);
      this.bits.view(byte, 1)[0] |= 1 << (bit & 7);
    }
    if (this.onMutate) this.onMutate({ op: 'push', after: value.slice(0, this.def.valueSize) });
    return 0;
  }

  /** bloom_map_peek_elem(): `value` is the element to test (an input, not an output). */
  override peek(value: Uint8Array): number {
    for (let i = 0; i < this.nrHashFuncs; i++) if (!this.testBit(this.hash(value, i))) return -ENOENT;
    return 0;
  }

  override pop(_out: Uint8Array): number {
    return -EOPNOTSUPP;
  }

  /** BPF_MAP_LOOKUP_ELEM of a bloom filter takes the value to test in place of a key. */
  lookupSys(value: Uint8Array): Uint8Array | number {
    const err = this.peek(value);
    return err || value.slice(0, this.def.valueSize);
  }

  update(_key: Uint8Array, _value: Uint8Array, _flags: number): number {
    return -EINVAL;
  }
  delete(_key: Uint8Array): number {
    return -EOPNOTSUPP;
  }
  getNextKey(_key: Uint8Array | undefined): Uint8Array | undefined {
    return undefined;
  }
  *entries(): Iterable<MapEntry> {}

  clone(): BloomFilterMap {
    const c = new BloomFilterMap(this.def, this.cpus);
    c.bits = this.bits.clone();
    return c;
  }
}
