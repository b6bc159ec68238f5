// BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c). max_entries is the size of the data area, a
// power of two and a multiple of the page size. Records are an 8-byte header
// (struct bpf_ringbuf_hdr { u32 len; u32 pg_off; }) and the sample, rounded up to 8 bytes; len
// carries BPF_RINGBUF_BUSY_BIT while the record is reserved and BPF_RINGBUF_DISCARD_BIT once
// discarded. Positions are free-running byte counters; a record lives at position & mask.
//
// The kernel maps the data pages twice in a row so a record that wraps past the end is still
// contiguous. Rewind's data area is 2 * size bytes for the same reason: the upper half mirrors
// the lower one for the records that wrap (filled from the lower half on reserve, folded back
// on submit/discard), so a program can write a wrapped sample through one pointer.

import { BpfMap, MapError, type MapEntry } from './map.js';
import type { MapDef } from '../program.js';
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  BPF_RB_PROD_POS,
  BPF_RB_RING_SIZE,
  BPF_RINGBUF_BUSY_BIT,
  BPF_RINGBUF_DISCARD_BIT,
  BPF_RINGBUF_HDR_SZ,
  EAGAIN,
  EINVAL,
  ENOTSUPP,
} from './uapi.js';

/** RINGBUF_MAX_RECORD_SZ: UINT_MAX / 4. */
const RINGBUF_MAX_RECORD_SZ = Math.floor(0xffffffff / 4);
/** Pages of struct bpf_ringbuf before the data (RINGBUF_NR_META_PAGES): header page, consumer, producer. */
const RINGBUF_NR_META_PAGES = 3;
const PAGE_SHIFT = 12;

export class RingbufMap extends BpfMap {
  readonly size: number;
  readonly mask: number;
  consumerPos = 0;
  producerPos = 0;
  pendingPos = 0;
  /** Committed samples in the order they were submitted (discarded ones are left out). */
  samples: Uint8Array[] = [];
  private data: Uint8Array;
  private view: DataView;

  constructor(def: MapDef, cpus: number) {
    super(def, cpus);
    this.size = def.maxEntries;
    this.mask = this.size - 1;
    this.data = new Uint8Array(2 * this.size);
    this.view = new DataView(this.data.buffer);
  }

  /** The data area (mapped twice, 2 * size bytes) that sample offsets point into. */
  dataBytes(): Uint8Array {
    return this.data;
  }

  private mirror(pos: number, len: number): void {
    if (pos + len > this.size) this.data.copyWithin(this.size, 0, pos + len - this.size);
  }

  private fold(pos: number, len: number): void {
    if (pos + len > this.size) this.data.copyWithin(0, this.size, pos + len);
  }

  /**
   * bpf_ringbuf_reserve(): the data-area offset of a new sample of `size` bytes, or -1 for NULL
   * (unknown flags, too big, or not enough room).
   */
  reserve(size: number, flags: number): number {
    if (flags) return -1;
    if (size > RINGBUF_MAX_RECORD_SZ) return -1;
    const len = Math.ceil((size + BPF_RINGBUF_HDR_SZ) / 8) * 8;
    if (len > this.size) return -1;

    // Skip committed records at the start of the pending window.
    let pend = this.pendingPos;
    while (pend < this.producerPos) {
      const hdrLen = this.view.getUint32(pend & this.mask, true);
      if (hdrLen & BPF_RINGBUF_BUSY_BIT) break;
      pend += Math.ceil(((hdrLen & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ) / 8) * 8;
    }
    this.pendingPos = pend;

    const prod = this.producerPos;
    const newProd = prod + len;
    // The producer may not get a full ring ahead of the consumer or of the oldest busy record.
    if (newProd - this.consumerPos > this.mask || newProd - pend > this.mask) return -1;

    const at = prod & this.mask;
    const hook = this.onMutate;
    const before = hook ? this.data.slice(at, at + BPF_RINGBUF_HDR_SZ) : undefined;
    this.mirror(at, len);
    this.view.setUint32(at, (size | BPF_RINGBUF_BUSY_BIT) >>> 0, true);
    // pg_off: pages from the start of struct bpf_ringbuf, which the kernel uses to find the ring.
    this.view.setUint32(at + 4, RINGBUF_NR_META_PAGES + (at >>> PAGE_SHIFT), true);
    this.producerPos = newProd;
    if (hook) hook({ op: 'reserve', offset: at, before, after: this.data.slice(at, at + BPF_RINGBUF_HDR_SZ) });
    return at + BPF_RINGBUF_HDR_SZ;
  }

  /** bpf_ringbuf_submit(): commits the sample at `offset` (from reserve). */
  submit(offset: number, _flags: number): void {
    this.commit(offset, false);
  }

  /** bpf_ringbuf_discard(): the record stays in the ring, marked discarded for the consumer. */
  discard(offset: number, _flags: number): void {
    this.commit(offset, true);
  }

  private commit(offset: number, discard: boolean): void {
    const at = offset - BPF_RINGBUF_HDR_SZ;
    const hdrLen = at >= 0 && at < this.size && (at & 7) === 0 ? this.view.getUint32(at, true) : 0;
    if (!(hdrLen & BPF_RINGBUF_BUSY_BIT)) {
      throw new MapError(`map '${this.def.name}': no reserved ring buffer record at data offset ${offset}`);
    }
    const size = hdrLen & ~BPF_RINGBUF_BUSY_BIT;
    this.fold(at, BPF_RINGBUF_HDR_SZ + size);
    const hook = this.onMutate;
    const before = hook ? this.data.slice(at, at + BPF_RINGBUF_HDR_SZ) : undefined;
    let newLen = (hdrLen ^ BPF_RINGBUF_BUSY_BIT) >>> 0;
    if (discard) newLen = (newLen | BPF_RINGBUF_DISCARD_BIT) >>> 0;
    this.view.setUint32(at, newLen, true);
    if (!discard) this.samples.push(this.readWrapped(offset, size));
    if (hook) hook({ op: discard ? 'discard' : 'submit', offset: at, before, after: this.data.slice(at, at + BPF_RINGBUF_HDR_SZ) });
  }

  private readWrapped(pos: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const start = pos & this.mask;
    const first = Math.min(len, this.size - start);
    out.set(this.data.subarray(start, start + first));
    if (first < len) out.set(this.data.subarray(0, len - first), first);
    return out;
  }

  /** bpf_ringbuf_output(): reserve, copy and submit in one; -EAGAIN when the ring is full. */
  output(data: Uint8Array, flags: number): number {
    if (flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
    const hook = this.onMutate;
    this.onMutate = undefined;
    try {
      const off = this.reserve(data.length, 0);
      if (off < 0) return -EAGAIN;
      this.data.set(data, off);
      this.commit(off, false);
      if (hook) hook({ op: 'output', offset: off - BPF_RINGBUF_HDR_SZ, after: data.slice() });
      return 0;
    } finally {
      this.onMutate = hook;
    }
  }

  /** bpf_ringbuf_query() */
  query(flags: number): number {
    switch (flags) {
      case BPF_RB_AVAIL_DATA:
        return this.producerPos - this.consumerPos;
      case BPF_RB_RING_SIZE:
        return this.size;
      case BPF_RB_CONS_POS:
        return this.consumerPos;
      case BPF_RB_PROD_POS:
        return this.producerPos;
      default:
        return 0;
    }
  }

  /**
   * What a user-space consumer (libbpf's ring_buffer__consume) reads: committed samples from
   * the consumer position up to the first record still reserved; advances the consumer.
   */
  consume(): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.consumerPos < this.producerPos) {
      const hdrLen = this.view.getUint32(this.consumerPos & this.mask, true);
      if (hdrLen & BPF_RINGBUF_BUSY_BIT) break;
      const size = hdrLen & ~BPF_RINGBUF_DISCARD_BIT;
      if (!(hdrLen & BPF_RINGBUF_DISCARD_BIT)) out.push(this.readWrapped(this.consumerPos + BPF_RINGBUF_HDR_SZ, size));
      this.consumerPos += Math.ceil((size + BPF_RINGBUF_HDR_SZ) / 8) * 8;
    }
    return out;
  }

  // ringbuf_map_lookup_elem() and friends: a ring buffer has no elements.
  lookupSys(_key: Uint8Array): Uint8Array | number {
    return -ENOTSUPP;
  }
  update(_key: Uint8Array, _value: Uint8Array, _flags: number): number {
    return -ENOTSUPP;
  }
  delete(_key: Uint8Array): number {
    return -ENOTSUPP;
  }
  getNextKey(_key: Uint8Array | undefined): Uint8Array | undefined {
    return undefined;
  }
  *entries(): Iterable<MapEntry> {}

  clone(): RingbufMap {
    const c = new RingbufMap(this.def, this.cpus);
    c.data.set(this.data);
    c.consumerPos = this.consumerPos;
    c.producerPos = this.producerPos;
    c.pendingPos = this.pendingPos;
    c.samples = this.samples.map((s) => s.slice());
    return c;
  }
}
