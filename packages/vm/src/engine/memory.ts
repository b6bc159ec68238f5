// The machine's memory: every pointer belongs to a region. A 64-bit pointer value is
// (REGION_HI_BASE + region index) in its upper 32 bits and the offset inside the region in its
// lower 32 bits, so provenance is read off the value itself and survives any copy, spill or
// arithmetic the program does.
//
// Regions whose bytes live in one flat buffer (stack frames, the packet, caller memory, the
// context image) are accessed by compiled code inline through three typed arrays (base, lower
// and upper bound for reads and for writes). Regions that need more than a bounds check (map
// values are bounded per value, the context has field rewrites, the stack tracks which bytes
// were written) have a fast-path bound of -1 and go through `Memory.read`/`Memory.write`.

import { Fault } from '../errors.js';
import { MAX_BPF_STACK, MAX_CALL_FRAMES } from '../isa.js';

export const REGION_HI_BASE = 0x1000;
/** Region indexes 0..7 are the stack frames of call depth 0..7. */
export const STACK_REGION = 0;
/** Region ids fit in 16 bits; ids above those defined at set-up are handed out as runs need them (map values, ring buffer samples). */
export const MAX_REGIONS = 65536;
/** The frame pointer r10 points this far into its frame region (the stack grows down). */
export const FRAME_SIZE = MAX_BPF_STACK;

export type RegionKind = 'stack' | 'ctx' | 'packet' | 'mem' | 'map_value' | 'map' | 'ringbuf' | 'rodata' | 'scratch';

/** Out-of-line accessors for regions that need more than a flat bounds check. */
export interface RegionHandler {
  /** Reads `size` bytes at `off` (little-endian), or returns a reason the read is refused. */
  read(off: number, size: number, pc: number): Uint8Array | string;
  /**
   * A load instruction's result when it is not the bytes read: the kernel rewrites context loads
   * such as `r2 = *(u32 *)(r1 + 0)` of xdp_md->data into loads of a 64-bit pointer.
   */
  loadValue?(off: number, size: number, pc: number): { lo: number; hi: number } | string;
  /** Writes the bytes at `off`, or returns a reason the write is refused. */
  write(off: number, bytes: Uint8Array, pc: number): string | undefined;
  /** How the region and an offset in it are written (`map_value(flows)+4`). */
  describe(off: number): string;
}

export interface Region {
  index: number;
  kind: RegionKind;
  name: string;
  /** Byte offset of region offset 0 in `view` (flat regions: in the flat buffer). */
  base: number;
  /** Where the bytes live; the flat buffer when absent. */
  view?: DataView;
  /** Valid offsets are [lo, hi). Offsets are never negative: see `origin`. */
  lo: number;
  hi: number;
  /** The offset shown as +0: r10 for a stack frame (`stack-8`), `data` for the packet (`pkt+14`). */
  origin: number;
  /** Name used when writing an offset: `stack`, `pkt`, `ctx`, `mem`. */
  label: string;
  readable: boolean;
  writable: boolean;
  /** When set, reads and writes go through the handler instead of the flat buffer. */
  handler?: RegionHandler;
  /** A read of a flat byte never written is reported (the stack). */
  trackInit?: boolean;
}

export function pointerHi(region: number): number {
  return REGION_HI_BASE + region;
}

/** Writes a region offset as Rewind writes it everywhere: `pkt+14`, `stack-8`, `ctx+0`. */
export function formatRegionOffset(r: Region, off: number): string {
  if (r.handler) return r.handler.describe(off);
  const d = off - r.origin;
  return d < 0 ? `${r.label}${d}` : `${r.label}+${d}`;
}

export class Memory {
  buf: ArrayBuffer;
  dv: DataView;
  u8: Uint8Array;
  /** One byte per flat byte: 1 once written. Only consulted for regions with trackInit. */
  shadow: Uint8Array;
  shadowDv: DataView;
  /** The shadow as 8-byte words, for clearing frames in few stores. */
  shadow64: Float64Array;
  /**
   * By stack frame: the lowest shadow address that can be marked since the frame was last
   * cleared (Machine.clearFrame clears from there, not the whole frame).
   */
  readonly shadowDirty = Int32Array.from({ length: MAX_CALL_FRAMES }, (_, k) => k * FRAME_SIZE);
  /** Fast-path tables, indexed by region: the bytes, base, lower bound, read and write upper bounds. */
  readonly RV: DataView[] = [];
  readonly RB = new Int32Array(MAX_REGIONS);
  readonly RLO = new Int32Array(MAX_REGIONS);
  readonly RHR = new Int32Array(MAX_REGIONS).fill(-1);
  readonly RHW = new Int32Array(MAX_REGIONS).fill(-1);
  readonly regions: (Region | undefined)[] = [];
  /** Regions defined to outlive `releaseRegions` (1 per index): map values a session keeps. */
  private readonly kept = new Uint8Array(MAX_REGIONS);
  /** Indexes defined since the last `releaseRegions`, kept ones excepted. */
  private defined: number[] = [];
  /**
   * Called when every region id is taken; returns true when it removed some (a session drops
   * the map value regions it keeps but the current run has not used).
   */
  onExhausted: (() => boolean) | undefined;
  /** Called when a region is defined or its bounds change (a recorder follows the region table). */
  onRefresh: ((r: Region) => void) | undefined;
  private flatTop: number;

  constructor(flatSize = 64 * 1024) {
    this.buf = new ArrayBuffer(flatSize);
    this.dv = new DataView(this.buf);
    this.u8 = new Uint8Array(this.buf);
    this.shadow = new Uint8Array(flatSize);
    this.shadowDv = new DataView(this.shadow.buffer);
    this.shadow64 = new Float64Array(this.shadow.buffer);
    // Stack frames first: frame d occupies flat bytes [d*512, (d+1)*512).
    for (let d = 0; d < MAX_CALL_FRAMES; d++) {
      this.define({
        index: STACK_REGION + d,
        kind: 'stack',
        name: 'stack',
        // Frames of callers are written stack#1-8 ... counted from the entry frame.
        label: d === 0 ? 'stack' : `stack#${d}`,
        base: d * FRAME_SIZE,
        lo: 0,
        hi: FRAME_SIZE,
        origin: FRAME_SIZE,
        readable: true,
        writable: true,
        trackInit: true,
      });
    }
    this.flatTop = MAX_CALL_FRAMES * FRAME_SIZE;
  }

  /** Reserves `size` flat bytes (8-aligned) and returns their physical offset. */
  allocFlat(size: number): number {
    const at = this.flatTop;
    const end = at + ((size + 7) & ~7);
    if (end > this.buf.byteLength) this.grow(end);
    this.flatTop = end;
    return at;
  }

  /** Releases every flat allocation made after `mark` (see `flatMark`). */
  resetFlat(mark: number): void {
    this.flatTop = mark;
  }

  get flatMark(): number {
    return this.flatTop;
  }

  private grow(min: number): void {
    let size = this.buf.byteLength;
    while (size < min) size *= 2;
    const buf = new ArrayBuffer(size);
    new Uint8Array(buf).set(this.u8);
    const shadow = new Uint8Array(size);
    shadow.set(this.shadow);
    this.buf = buf;
    this.dv = new DataView(buf);
    this.u8 = new Uint8Array(buf);
    this.shadow = shadow;
    this.shadowDv = new DataView(shadow.buffer);
    this.shadow64 = new Float64Array(shadow.buffer);
    for (const r of this.regions) if (r && !r.view) this.RV[r.index] = this.dv;
  }

  /**
   * Adds or replaces a region and refreshes its fast-path bounds. A region defined with `keep`
   * survives `releaseRegions` until it is removed.
   */
  define(r: Region, keep = false): Region {
    if (r.index < 0 || r.index >= MAX_REGIONS) throw new RangeError(`too many memory regions (${MAX_REGIONS})`);
    this.regions[r.index] = r;
    this.refresh(r);
    this.kept[r.index] = keep ? 1 : 0;
    if (!keep && this.defined.push(r.index) > 2 * MAX_REGIONS) {
      // A machine whose owner never releases (a bare Machine run over and over): drop what was removed.
      this.defined = [...new Set(this.defined.filter((i) => this.regions[i] && !this.kept[i]))];
    }
    return r;
  }

  /** The next free region index, or -1 when every id is taken. */
  nextIndex(): number {
    const i = this.freeIndex();
    if (i >= 0 || !this.onExhausted?.()) return i;
    return this.freeIndex();
  }
  private freeIndex(): number {
    for (let i = this.searchFrom; i < MAX_REGIONS; i++) {
      if (!this.regions[i]) {
        this.searchFrom = i + 1;
        return i;
      }
    }
    return -1;
  }
  private searchFrom = MAX_CALL_FRAMES;

  /** Region ids defined so far: regions defined after a mark are removed by `releaseRegions`. */
  get regionMark(): number {
    return this.regions.length;
  }

  /** Removes the regions defined at or above `mark` since the last release, except kept ones. */
  releaseRegions(mark: number): void {
    const defined = this.defined;
    if (defined.length === 0) return;
    for (const i of defined) if (i >= mark && !this.kept[i] && this.regions[i]) this.remove(i);
    this.defined = [];
  }

  /** Re-reads a region's bounds into the fast-path tables (call after changing lo/hi/base). */
  refresh(r: Region): void {
    // Stack frames (trackInit) are fast too: compiled code checks their written-bytes shadow inline.
    const fast = !r.handler;
    this.onRefresh?.(r);
    this.RV[r.index] = r.view ?? this.dv;
    this.RB[r.index] = r.base;
    this.RLO[r.index] = r.lo;
    this.RHR[r.index] = fast && r.readable ? r.hi : -1;
    this.RHW[r.index] = fast && r.writable ? r.hi : -1;
  }

  remove(index: number): void {
    this.regions[index] = undefined;
    this.kept[index] = 0;
    this.RHR[index] = -1;
    this.RHW[index] = -1;
    this.searchFrom = Math.min(this.searchFrom, index);
  }

  regionOf(hi: number): Region | undefined {
    const i = (hi - REGION_HI_BASE) >>> 0;
    return i < MAX_REGIONS ? this.regions[i] : undefined;
  }

  /** Describes a 64-bit value as a pointer (`pkt+14`), or undefined for a scalar. */
  describePointer(lo: number, hi: number): string | undefined {
    const r = this.regionOf((lo | 0) < 0 ? hi + 1 : hi);
    return r ? formatRegionOffset(r, lo | 0) : undefined;
  }

  /**
   * Resolves an access of `size` bytes at pointer (hi:lo) + off. Returns the region and offset,
   * or throws a Fault naming the access and the region's bounds.
   */
  resolve(pc: number, lo: number, hi: number, off: number, size: number, write: boolean, what: () => string): { r: Region; at: number } {
    // A pointer moved below its region's offset 0 borrowed from the high half: (hi - 1, lo >= 2^31)
    // is region hi at a negative offset. Regions are far smaller than 2 GiB, so lo's sign decides.
    const below = (lo | 0) < 0;
    const r = this.regionOf(below ? hi + 1 : hi);
    const at = (below ? lo | 0 : lo >>> 0) + off;
    const verb = write ? 'write' : 'read';
    if (!r) {
      const a = BigInt.asUintN(64, ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)) + BigInt(off));
      const addr = formatAddress(Number(a >> 32n), Number(a & 0xffffffffn));
      throw new Fault(`fault at insn ${pc} (${what()}): ${verb} of ${bytesText(size)} at ${addr}, which is not a pointer into any memory region`, write ? 'write' : 'read', pc);
    }
    if (write ? !r.writable : !r.readable) {
      throw new Fault(`fault at insn ${pc} (${what()}): ${verb} of ${bytesText(size)} at ${formatRegionOffset(r, at)}, ${describeRegion(r)} is ${write ? 'read-only' : 'not readable'}`, write ? 'write' : 'read', pc);
    }
    if (!r.handler && (at < r.lo || at + size > r.hi)) {
      throw new Fault(`fault at insn ${pc} (${what()}): ${verb} of ${bytesText(size)} at ${formatRegionOffset(r, at)}, ${boundsText(r)}`, write ? 'write' : 'read', pc);
    }
    return { r, at };
  }
}

/** "1 byte", "4 bytes". */
export function bytesText(n: number): string {
  return n === 1 ? '1 byte' : `${n} bytes`;
}

export function formatAddress(hi: number, lo: number): string {
  return '0x' + (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

function describeRegion(r: Region): string {
  switch (r.kind) {
    case 'stack':
      return 'the stack';
    case 'packet':
      return 'the packet';
    case 'ctx':
      return 'the context';
    default:
      return r.name;
  }
}

/** "packet is 60 bytes", "stack frame is [stack-512, stack)", ... */
export function boundsText(r: Region): string {
  switch (r.kind) {
    case 'stack':
      return `stack frame is ${formatRegionOffset(r, r.lo)} to ${formatRegionOffset(r, r.hi)}`;
    case 'packet':
      return r.lo === r.origin ? `packet is ${r.hi - r.lo} bytes` : `packet is ${formatRegionOffset(r, r.lo)} to ${formatRegionOffset(r, r.hi)}`;
    default:
      return `${describeRegion(r)} is ${r.hi - r.lo} bytes`;
  }
}
