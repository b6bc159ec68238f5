// The packet of one run: a buffer in the machine's flat memory with headroom before the data
// and tailroom after it, as the kernel's test run lays it out (XDP: XDP_PACKET_HEADROOM = 256
// bytes before the data in a 4 KiB frame; skb: NET_SKB_PAD = 64 bytes of headroom). Pointers
// into it carry the packet region and an offset from the start of the buffer; `pkt+N` is
// written relative to `data`.
//
// For skb programs the buffer also keeps the struct sk_buff header offsets helpers move
// (mac_header, network_header, transport_header) as buffer offsets, like the kernel keeps
// them as offsets from skb->head.

import { RewindError } from '../errors.js';
import { REGION_HI_BASE, type Memory, type Region } from '../engine/memory.js';

/** skb->transport_header when it was never set (the kernel's (u16)~0U). */
export const HEADER_UNSET = -1;

export class PacketBuffer {
  readonly region: Region;
  /** Offsets into the buffer: data_meta <= data <= data_end <= capacity. */
  meta = 0;
  data = 0;
  end = 0;
  /** Buffer offsets [dirtyLo, dirtyHi) may hold bytes of earlier runs. */
  private dirtyLo = 0;
  private dirtyHi = 0;
  /** skb->mac_header, network_header, transport_header (buffer offsets; HEADER_UNSET when unset). */
  mac = HEADER_UNSET;
  network = HEADER_UNSET;
  transport = HEADER_UNSET;
  /** skb->encapsulation, set by bpf_skb_adjust_room's encap flags. */
  encapsulation = false;
  /** skb->ip_summed and csum_level: -1 for CHECKSUM_NONE (the test run's), 0..3 for CHECKSUM_UNNECESSARY at that level. */
  csumLevel = -1;
  /** Called after the bounds change (refresh): contexts keep their packet pointers current. */
  readonly watchers: (() => void)[] = [];

  constructor(
    readonly mem: Memory,
    readonly capacity: number,
    readonly headroom: number,
    index: number,
  ) {
    const base = mem.allocFlat(capacity);
    this.region = mem.define({ index, kind: 'packet', name: 'packet', label: 'pkt', base, lo: 0, hi: 0, origin: 0, readable: true, writable: true });
  }

  /** Puts `bytes` at `at` (default: the headroom) and makes them the packet. */
  load(bytes: Uint8Array, maxLen = this.capacity - this.headroom, at = this.headroom): void {
    if (bytes.length > maxLen) throw new RewindError(`packet of ${bytes.length} bytes is larger than the ${maxLen} bytes the kernel allows here`);
    if (at < 0 || at + bytes.length > this.capacity) throw new RewindError(`packet of ${bytes.length} bytes does not fit the ${this.capacity}-byte buffer at offset ${at}`);
    const u8 = this.mem.u8;
    const base = this.region.base;
    const end = at + bytes.length;
    // The kernel's test run starts from a zeroed buffer; only what earlier runs touched needs
    // it, and not where the new packet goes.
    if (this.dirtyLo < Math.min(at, this.dirtyHi)) u8.fill(0, base + this.dirtyLo, base + Math.min(at, this.dirtyHi));
    if (this.dirtyHi > Math.max(end, this.dirtyLo)) u8.fill(0, base + Math.max(end, this.dirtyLo), base + this.dirtyHi);
    u8.set(bytes, base + at);
    this.dirtyLo = at;
    this.dirtyHi = end;
    this.mac = this.network = this.transport = HEADER_UNSET;
    this.encapsulation = false;
    this.csumLevel = -1;
    // The region's bounds (and the contexts' packet slots, which refresh writes with them) only
    // change in refresh: when they already are this packet's, as for the next packet of the same
    // size, there is nothing to redo.
    const r = this.region;
    if (this.meta === at && this.data === at && this.end === end && r.lo === at && r.origin === at && r.hi === end) return;
    this.meta = this.data = at;
    this.end = end;
    this.refresh();
  }

  /** Re-reads data/data_end/data_meta into the region's bounds after a helper moved them. */
  refresh(): void {
    // Whatever a run could have written lies inside the bounds it had at some refresh.
    if (this.meta < this.dirtyLo) this.dirtyLo = this.meta;
    if (this.end > this.dirtyHi) this.dirtyHi = this.end;
    const r = this.region;
    r.lo = this.meta;
    r.hi = this.end;
    r.origin = this.data;
    this.mem.refresh(r);
    for (const w of this.watchers) w();
  }

  get length(): number {
    return this.end - this.data;
  }

  /** The packet's bytes, data to data_end (a copy). */
  bytes(): Uint8Array {
    const b = this.region.base;
    return this.mem.u8.slice(b + this.data, b + this.end);
  }

  /** The live bytes of the whole buffer (indexes are buffer offsets). */
  buffer(): Uint8Array {
    return this.mem.u8.subarray(this.region.base, this.region.base + this.capacity);
  }

  /** A pointer (hi:lo) to buffer offset `off`. */
  pointer(off: number): { lo: number; hi: number } {
    return { lo: off, hi: REGION_HI_BASE + this.region.index };
  }

  /**
   * Makes room for `need` more bytes before data_meta (skb_cow_head): when the headroom is too
   * small the packet moves further into the buffer, as the kernel reallocates the head. Header
   * offsets move with it; pointers a program holds keep the old offsets, as they would keep the
   * old addresses (the verifier makes programs reload them after such helpers).
   */
  ensureHeadroom(need: number): void {
    if (this.meta >= need) return;
    const shift = Math.max(need - this.meta, this.headroom);
    if (this.end + shift > this.capacity) throw new RewindError(`packet of ${this.end - this.meta} bytes cannot grow by ${need} bytes in the ${this.capacity}-byte buffer`);
    const buf = this.buffer();
    buf.copyWithin(this.meta + shift, this.meta, this.end);
    buf.fill(0, this.meta, this.meta + shift);
    this.meta += shift;
    this.data += shift;
    this.end += shift;
    if (this.mac !== HEADER_UNSET) this.mac += shift;
    if (this.network !== HEADER_UNSET) this.network += shift;
    if (this.transport !== HEADER_UNSET) this.transport += shift;
  }
}
