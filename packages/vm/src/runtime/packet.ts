// The packet of one run: a buffer in the machine's flat memory with headroom before the data
// and tailroom after it, as the kernel's test run lays it out (XDP: XDP_PACKET_HEADROOM = 256
// bytes before the data in a 4 KiB frame; skb: NET_SKB_PAD = 64 bytes of headroom). Pointers
// into it carry the packet region and an offset from the start of the buffer; `pkt+N` is
// written relative to `data`.

import { RewindError } from '../errors.js';
import { REGION_HI_BASE, type Memory, type Region } from '../engine/memory.js';

export class PacketBuffer {
  readonly region: Region;
  /** Offsets into the buffer: data_meta <= data <= data_end <= capacity. */
  meta = 0;
  data = 0;
  end = 0;

  constructor(
    readonly mem: Memory,
    readonly capacity: number,
    readonly headroom: number,
    index: number,
  ) {
    const base = mem.allocFlat(capacity);
    this.region = mem.define({ index, kind: 'packet', name: 'packet', label: 'pkt', base, lo: 0, hi: 0, origin: 0, readable: true, writable: true });
  }

  /** Puts `bytes` at the headroom and makes them the packet. */
  load(bytes: Uint8Array, maxLen = this.capacity - this.headroom): void {
    if (bytes.length > maxLen) throw new RewindError(`packet of ${bytes.length} bytes is larger than the ${maxLen} bytes the kernel allows here`);
    const u8 = this.mem.u8;
    u8.fill(0, this.region.base, this.region.base + this.capacity);
    u8.set(bytes, this.region.base + this.headroom);
    this.meta = this.data = this.headroom;
    this.end = this.headroom + bytes.length;
    this.refresh();
  }

  /** Re-reads data/data_end/data_meta into the region's bounds after a helper moved them. */
  refresh(): void {
    const r = this.region;
    r.lo = this.meta;
    r.hi = this.end;
    r.origin = this.data;
    this.mem.refresh(r);
  }

  get length(): number {
    return this.end - this.data;
  }

  /** The packet's bytes, data to data_end (a copy). */
  bytes(): Uint8Array {
    const b = this.region.base;
    return this.mem.u8.slice(b + this.data, b + this.end);
  }

  /** The live bytes of the whole buffer. */
  buffer(): Uint8Array {
    return this.mem.u8.subarray(this.region.base, this.region.base + this.capacity);
  }

  /** A pointer (hi:lo) to buffer offset `off`. */
  pointer(off: number): { lo: number; hi: number } {
    return { lo: off, hi: REGION_HI_BASE + this.region.index };
  }
}
