// Program contexts: what r1 points to when a program starts. Loads of pointer fields behave as
// the kernel's convert_ctx_access rewrites make them behave: `r2 = *(u32 *)(r1 + 0)` of
// xdp_md->data loads a 64-bit pointer to the packet. Field values a run can set from the
// command line (--ctx field=value) are kept in a plain record.

import { RewindError } from '../errors.js';
import { REGION_HI_BASE, type Memory, type Region, type RegionHandler } from '../engine/memory.js';
import type { PacketBuffer } from './packet.js';

export interface CtxField {
  name: string;
  offset: number;
  size: number;
  /** Loads give a pointer into the packet at this buffer offset. */
  pointer?: (p: PacketBuffer) => number;
  /** The program may write it. */
  writable?: boolean;
  /** Number of elements for array fields (cb[5], remote_ip6[4]). */
  count?: number;
}

/** struct xdp_md, include/uapi/linux/bpf.h. */
export const XDP_MD: CtxField[] = [
  { name: 'data', offset: 0, size: 4, pointer: (p) => p.data },
  { name: 'data_end', offset: 4, size: 4, pointer: (p) => p.end },
  { name: 'data_meta', offset: 8, size: 4, pointer: (p) => p.meta },
  { name: 'ingress_ifindex', offset: 12, size: 4 },
  { name: 'rx_queue_index', offset: 16, size: 4 },
  { name: 'egress_ifindex', offset: 20, size: 4 },
];
export const XDP_MD_SIZE = 24;

/** struct __sk_buff, include/uapi/linux/bpf.h. */
export const SK_BUFF: CtxField[] = [
  { name: 'len', offset: 0, size: 4 },
  { name: 'pkt_type', offset: 4, size: 4 },
  { name: 'mark', offset: 8, size: 4, writable: true },
  { name: 'queue_mapping', offset: 12, size: 4, writable: true },
  { name: 'protocol', offset: 16, size: 4 },
  { name: 'vlan_present', offset: 20, size: 4 },
  { name: 'vlan_tci', offset: 24, size: 4 },
  { name: 'vlan_proto', offset: 28, size: 4 },
  { name: 'priority', offset: 32, size: 4, writable: true },
  { name: 'ingress_ifindex', offset: 36, size: 4 },
  { name: 'ifindex', offset: 40, size: 4 },
  { name: 'tc_index', offset: 44, size: 4, writable: true },
  { name: 'cb', offset: 48, size: 4, count: 5, writable: true },
  { name: 'hash', offset: 68, size: 4 },
  { name: 'tc_classid', offset: 72, size: 4, writable: true },
  { name: 'data', offset: 76, size: 4, pointer: (p) => p.data },
  { name: 'data_end', offset: 80, size: 4, pointer: (p) => p.end },
  { name: 'napi_id', offset: 84, size: 4 },
  { name: 'family', offset: 88, size: 4 },
  { name: 'remote_ip4', offset: 92, size: 4 },
  { name: 'local_ip4', offset: 96, size: 4 },
  { name: 'remote_ip6', offset: 100, size: 4, count: 4 },
  { name: 'local_ip6', offset: 116, size: 4, count: 4 },
  { name: 'remote_port', offset: 132, size: 4 },
  { name: 'local_port', offset: 136, size: 4 },
  { name: 'data_meta', offset: 140, size: 4, pointer: (p) => p.meta },
  { name: 'flow_keys', offset: 144, size: 8 },
  { name: 'tstamp', offset: 152, size: 8, writable: true },
  { name: 'wire_len', offset: 160, size: 4 },
  { name: 'gso_segs', offset: 164, size: 4 },
  { name: 'sk', offset: 168, size: 8 },
  { name: 'gso_size', offset: 176, size: 4 },
  { name: 'tstamp_type', offset: 180, size: 1 },
  { name: 'hwtstamp', offset: 184, size: 8 },
];
export const SK_BUFF_SIZE = 192;

/** A context: its bytes (the values of its plain fields) and how loads and stores behave. */
export class Context {
  readonly region: Region;
  readonly bytes: Uint8Array;
  private readonly dv: DataView;

  constructor(
    mem: Memory,
    index: number,
    readonly structName: string,
    readonly fields: CtxField[],
    size: number,
    readonly packet: PacketBuffer | undefined,
    /** Fields a program may not read in this program type (socket filters and data). */
    readonly hidden: ReadonlySet<string> = new Set(),
  ) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
    const handler: RegionHandler = {
      read: (off, n) => this.read(off, n),
      loadValue: (off, n) => this.loadValue(off, n),
      write: (off, b) => this.write(off, b),
      describe: (off) => {
        const f = this.fieldAt(off);
        const name = f ? `${f.name}${f.count ? `[${Math.floor((off - f.offset) / f.size)}]` : ''}` : undefined;
        return `ctx+${off}${name ? ` (${structName}.${name})` : ''}`;
      },
    };
    this.region = mem.define({ index, kind: 'ctx', name: 'ctx', label: 'ctx', base: 0, lo: 0, hi: size, origin: 0, readable: true, writable: true, handler });
  }

  get pointer(): { lo: number; hi: number } {
    return { lo: 0, hi: REGION_HI_BASE + this.region.index };
  }

  fieldAt(off: number): CtxField | undefined {
    return this.fields.find((f) => off >= f.offset && off < f.offset + f.size * (f.count ?? 1));
  }

  private access(off: number, n: number, write: boolean): CtxField | string {
    const f = this.fieldAt(off);
    const what = `${write ? 'write' : 'read'} of ${n} bytes at ctx+${off}`;
    if (!f || this.hidden.has(f.name)) return `${what}: no field of ${this.structName} there${f ? ` this program type may access` : ''}`;
    const elemOff = (off - f.offset) % f.size;
    if (elemOff + n > f.size) return `${what} crosses the end of ${this.structName}.${f.name}`;
    if (f.pointer && (n !== 4 || elemOff !== 0)) return `${what}: ${this.structName}.${f.name} is a pointer and is loaded with a 4-byte load of the whole field`;
    if (write && (!f.writable || f.pointer)) return `${what}: ${this.structName}.${f.name} is read-only`;
    return f;
  }

  private read(off: number, n: number): Uint8Array | string {
    const f = this.access(off, n, false);
    if (typeof f === 'string') return f;
    return this.bytes.slice(off, off + n);
  }

  private loadValue(off: number, n: number): { lo: number; hi: number } | string {
    const f = this.access(off, n, false);
    if (typeof f === 'string') return f;
    if (f.pointer) {
      if (!this.packet) return `${this.structName}.${f.name}: this run has no packet`;
      return this.packet.pointer(f.pointer(this.packet));
    }
    const b = this.bytes;
    switch (n) {
      case 1:
        return { lo: b[off]!, hi: 0 };
      case 2:
        return { lo: this.dv.getUint16(off, true), hi: 0 };
      case 4:
        return { lo: this.dv.getInt32(off, true), hi: 0 };
      default:
        return { lo: this.dv.getInt32(off, true), hi: this.dv.getInt32(off + 4, true) };
    }
  }

  private write(off: number, b: Uint8Array): string | undefined {
    const f = this.access(off, b.length, true);
    if (typeof f === 'string') return f;
    this.bytes.set(b, off);
    return undefined;
  }

  /** Sets a field by name (`mark`, `cb[2]`, `ingress_ifindex`) for --ctx. */
  set(spec: string, value: bigint): void {
    const m = /^([a-z_0-9]+)(?:\[(\d+)\])?$/.exec(spec);
    const f = m ? this.fields.find((x) => x.name === m[1]) : undefined;
    if (!m || !f) throw new RewindError(`--ctx: ${this.structName} has no field '${spec}' (fields: ${this.fields.filter((x) => !x.pointer).map((x) => x.name).join(', ')})`);
    if (f.pointer) throw new RewindError(`--ctx: ${this.structName}.${f.name} is a pointer set from the packet`);
    const idx = m[2] === undefined ? 0 : Number(m[2]);
    if (idx >= (f.count ?? 1)) throw new RewindError(`--ctx: ${this.structName}.${f.name} has ${f.count ?? 1} elements`);
    const at = f.offset + idx * f.size;
    if (value < 0n || value >= 1n << BigInt(8 * f.size)) throw new RewindError(`--ctx: ${spec}=${value} does not fit in ${f.size} bytes`);
    for (let k = 0; k < f.size; k++) this.bytes[at + k] = Number((value >> BigInt(8 * k)) & 0xffn);
  }

  get(name: string): number {
    const f = this.fields.find((x) => x.name === name);
    if (!f) throw new Error(`internal: no field ${name}`);
    return f.size === 8 ? Number(this.dv.getBigUint64(f.offset, true)) : f.size === 4 ? this.dv.getUint32(f.offset, true) : this.bytes[f.offset]!;
  }

  setField(name: string, value: number): void {
    const f = this.fields.find((x) => x.name === name);
    if (!f) throw new Error(`internal: no field ${name}`);
    if (f.size === 4) this.dv.setUint32(f.offset, value >>> 0, true);
    else if (f.size === 8) this.dv.setBigUint64(f.offset, BigInt(value), true);
    else this.bytes[f.offset] = value;
  }
}
