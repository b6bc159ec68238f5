// Program contexts: what r1 points to when a program starts. Loads and stores behave as the
// kernel's verifier lets them and as its convert_ctx_access rewrites make them behave
// (net/core/filter.c): `r2 = *(u32 *)(r1 + 0)` of xdp_md->data loads a 64-bit pointer to the
// packet, a 1-byte load of __sk_buff->mark reads one byte of the value, a 2-byte load anywhere
// in __sk_buff->protocol reads the whole __be16 because the kernel field behind it is 16 bits
// wide, and a store to tc_classid keeps 16 bits. Accesses the verifier refuses (xdp_is_valid_access,
// bpf_skb_is_valid_access and the tc, socket filter and cgroup variants) are faults here.
//
// The context's bytes hold the values of its plain fields; `prepare` fills them as the kernel's
// test run (net/bpf/test_run.c) does from the packet and the caller's ctx_in.

import { RewindError } from '../errors.js';
import { REGION_HI_BASE, type Memory, type Region, type RegionHandler } from '../engine/memory.js';
import type { ProgType } from '../program.js';
import type { PacketBuffer } from './packet.js';

export interface CtxField {
  name: string;
  offset: number;
  /** Bytes of each element in the uapi struct. */
  size: number;
  /** Number of elements for array fields (cb[5], remote_ip6[4]). */
  count?: number;
  /** Loads give a pointer into the packet at this buffer offset. */
  pointer?: (p: PacketBuffer) => number;
  /** The value is computed from the packet (skb->len), not kept in the context's bytes. */
  derived?: (p: PacketBuffer) => number;
  /**
   * Bytes of the kernel field the rewrite loads (skb->protocol: 2, skb->pkt_type: 1). A narrow
   * load at least this wide gives the whole value; narrower ones give its bytes. Stores keep
   * this many bytes. Default: `size`.
   */
  target?: number;
  /** Loads and stores of any size read and write the bytes themselves (qdisc_skb_cb data). */
  raw?: boolean;
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

/**
 * Packet fields of both contexts by what they hold (Context.syncPacketSlots): data, data_end and
 * data_meta point to those buffer offsets, len is data_end - data; others use their accessor.
 */
const PACKET_SLOT: Record<string, number> = { data: 0, data_end: 1, data_meta: 2, len: 3 };
const PACKET_SLOT_OTHER = 4;
const XDP_INGRESS_IFINDEX = 12;

/** struct __sk_buff, include/uapi/linux/bpf.h, with the widths of the struct sk_buff fields behind it. */
export const SK_BUFF: CtxField[] = [
  { name: 'len', offset: 0, size: 4, derived: (p) => p.end - p.data },
  { name: 'pkt_type', offset: 4, size: 4, target: 1 },
  { name: 'mark', offset: 8, size: 4 },
  { name: 'queue_mapping', offset: 12, size: 4, target: 2 },
  { name: 'protocol', offset: 16, size: 4, target: 2 },
  { name: 'vlan_present', offset: 20, size: 4 },
  { name: 'vlan_tci', offset: 24, size: 4, target: 2 },
  { name: 'vlan_proto', offset: 28, size: 4, target: 2 },
  { name: 'priority', offset: 32, size: 4 },
  { name: 'ingress_ifindex', offset: 36, size: 4 },
  { name: 'ifindex', offset: 40, size: 4 },
  { name: 'tc_index', offset: 44, size: 4, target: 2 },
  { name: 'cb', offset: 48, size: 4, count: 5, raw: true },
  { name: 'hash', offset: 68, size: 4 },
  { name: 'tc_classid', offset: 72, size: 4, target: 2 },
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
  { name: 'tstamp', offset: 152, size: 8 },
  { name: 'wire_len', offset: 160, size: 4 },
  { name: 'gso_segs', offset: 164, size: 4, target: 2 },
  { name: 'sk', offset: 168, size: 8 },
  { name: 'gso_size', offset: 176, size: 4, target: 2 },
  { name: 'tstamp_type', offset: 180, size: 1 },
  { name: 'hwtstamp', offset: 184, size: 8 },
];
export const SK_BUFF_SIZE = 192;
const skbOffset = (name: string) => SK_BUFF.find((f) => f.name === name)!.offset;
const SKB_PKT_TYPE = skbOffset('pkt_type');
const SKB_PROTOCOL = skbOffset('protocol');
const SKB_IFINDEX = skbOffset('ifindex');

/** The verifier's answer for one access: undefined when allowed, else why it refuses. */
export type CtxAccessRule = (f: CtxField, off: number, size: number, write: boolean) => string | undefined;

// xdp_is_valid_access(): 4-byte aligned loads only; egress_ifindex only for devmap programs.
const xdpAccess: CtxAccessRule = (f, _off, size, write) => {
  if (f.name === 'egress_ifindex') return 'xdp_md.egress_ifindex is only readable by programs attached to a devmap';
  if (write) return 'xdp_md is read-only';
  if (size !== 4) return `xdp_md.${f.name} is read with a 4-byte load`;
  return undefined;
};

const SK_FIELDS = new Set(['family', 'remote_ip4', 'local_ip4', 'remote_ip6', 'local_ip6', 'remote_port', 'local_port']);
const ADDR_FIELDS = new Set(['remote_ip4', 'local_ip4', 'remote_ip6', 'local_ip6']);
const PACKET_POINTERS = new Set(['data', 'data_end', 'data_meta']);

/** Per program type: fields it may not touch, and fields it may write (tc_cls_act_is_valid_access and friends). */
const SKB_RULES: Record<'tc' | 'socket' | 'cgroup_skb', { hidden: Set<string>; writable: Set<string> }> = {
  tc: {
    hidden: SK_FIELDS,
    writable: new Set(['mark', 'tc_index', 'priority', 'tc_classid', 'cb', 'tstamp', 'queue_mapping']),
  },
  socket: {
    hidden: new Set(['tc_classid', 'data', 'data_meta', 'data_end', ...SK_FIELDS, 'tstamp', 'wire_len', 'hwtstamp']),
    writable: new Set(['cb']),
  },
  cgroup_skb: {
    hidden: new Set(['tc_classid', 'data_meta', 'wire_len']),
    writable: new Set(['mark', 'priority', 'cb', 'tstamp']),
  },
};

/** bpf_skb_is_valid_access() behind the program type's own rules. */
function skbAccess(type: 'tc' | 'socket' | 'cgroup_skb'): CtxAccessRule {
  const rules = SKB_RULES[type];
  return (f, off, size, write) => {
    if (rules.hidden.has(f.name)) return `__sk_buff.${f.name} is not accessible to ${type} programs`;
    if (write && !rules.writable.has(f.name)) return `__sk_buff.${f.name} is read-only in ${type} programs`;
    if (f.name === 'tstamp_type') return type === 'tc' && size === 1 ? undefined : `__sk_buff.tstamp_type is only read by tc programs, with a 1-byte load`;
    if (f.raw) return off + size > f.offset + f.size * (f.count ?? 1) ? `the access runs past the end of __sk_buff.${f.name}` : undefined;
    if (PACKET_POINTERS.has(f.name) || ADDR_FIELDS.has(f.name)) return size === 4 ? undefined : `__sk_buff.${f.name} is read with a 4-byte load`;
    if (f.name === 'flow_keys') return '__sk_buff.flow_keys is only for flow dissector programs';
    if (f.name === 'hwtstamp' || f.name === 'sk') return write ? `__sk_buff.${f.name} is read-only` : size === 8 ? undefined : `__sk_buff.${f.name} is read with an 8-byte load`;
    if (f.name === 'tstamp') return size === 8 ? undefined : '__sk_buff.tstamp is accessed with 8-byte loads and stores';
    if (write) return size === 4 ? undefined : `__sk_buff.${f.name} is written with a 4-byte store`;
    // bpf_ctx_narrow_access_ok(): 1, 2 or 4 bytes.
    return size <= 4 ? undefined : `__sk_buff.${f.name} is a 4-byte field`;
  };
}

/** A context: its bytes (the values of its plain fields) and how loads and stores behave. */
export class Context {
  readonly region: Region;
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  /** The bytes as 32-bit words (contexts are multiples of 4 bytes). */
  private readonly words: Int32Array;
  /**
   * The bytes and the table hold what prepare('xdp', 'none') made of them, apart from the
   * data/data_end words finishRun wrote (programs cannot write an xdp_md): see repeatXdpNone.
   */
  private xdpNone = false;
  private readonly byName = new Map<string, CtxField>();
  /**
   * The 4-byte slots a 4-byte load may read from the machine's context table instead of the
   * slow path (CompileOptions.ctxSlots): 1 where the verifier lets a program load 4 bytes, the
   * whole field (or one element of cb[]), for this program type.
   */
  readonly slots: Uint8Array;
  /** Slots whose value is in `bytes` (1 per slot), and slots computed from the packet (pointers, skb->len). */
  private readonly plainSlots: Uint8Array;
  private readonly packetSlots: CtxField[] = [];
  private readonly packetSlotIndex: number[] = [];
  /** What each packet slot holds, for syncPacketSlots: a PACKET_SLOT kind. */
  private readonly packetSlotKind: number[] = [];
  /** The machine's context table while this context is the running program's. */
  private table: { lo: Int32Array; hi: Int32Array } | undefined;
  /** Plain slots whose table entry may be nonzero since the last `clear`. */
  private readonly tableDirty: number[] = [];

  constructor(
    mem: Memory,
    index: number,
    readonly structName: string,
    readonly fields: CtxField[],
    size: number,
    readonly packet: PacketBuffer,
    /** The verifier's rules for this program type. */
    readonly rule: CtxAccessRule,
  ) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
    this.words = new Int32Array(this.bytes.buffer);
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
    for (const f of fields) this.byName.set(f.name, f);
    // A slot is in the table when loadValue(off, 4) is allowed and is the field's whole value.
    this.slots = new Uint8Array(size >> 2);
    this.plainSlots = new Uint8Array(size >> 2);
    for (let k = 0; k < this.slots.length; k++) {
      const f = this.access(4 * k, 4, false);
      if (typeof f === 'string') continue;
      if (f.pointer || f.derived) {
        this.packetSlots.push(f);
        this.packetSlotIndex.push(k);
        this.packetSlotKind.push(PACKET_SLOT[f.name] ?? PACKET_SLOT_OTHER);
      } else if (f.raw || f.size === 4) {
        this.plainSlots[k] = 1;
      } else continue;
      this.slots[k] = 1;
    }
    packet.watchers.push(() => this.syncPacketSlots());
  }

  /**
   * Makes this context the one the machine's context table (lo, hi per 4-byte slot) mirrors, and
   * keeps the table current through context writes and packet moves until `unbindTable`.
   */
  bindTable(lo: Int32Array, hi: Int32Array): void {
    this.table = { lo, hi };
    // High halves stay 0 for plain slots; only packet pointers set them.
    lo.fill(0);
    hi.fill(0);
    this.tableDirty.length = 0;
    this.syncPlainSlots(0, this.bytes.length);
    this.syncPacketSlots();
  }

  unbindTable(): void {
    this.table = undefined;
  }

  /** Table entries of the plain slots overlapping bytes [from, to). */
  private syncPlainSlots(from: number, to: number): void {
    const t = this.table;
    if (!t) return;
    const end = Math.min((to + 3) >> 2, this.plainSlots.length);
    for (let k = from >> 2; k < end; k++) {
      if (!this.plainSlots[k]) continue;
      const v = this.dv.getInt32(4 * k, true);
      if (v !== 0 && t.lo[k] === 0) this.tableDirty.push(k);
      t.lo[k] = v;
    }
  }

  /** Table entries of the packet pointers and skb->len, after the packet's bounds moved. */
  private syncPacketSlots(): void {
    const t = this.table;
    if (!t) return;
    const p = this.packet;
    const hi = REGION_HI_BASE + p.region.index;
    const kinds = this.packetSlotKind;
    for (let j = 0; j < kinds.length; j++) {
      const k = this.packetSlotIndex[j]!;
      // The common fields without calling their accessors: this runs for every packet whose
      // size differs from the last one's.
      switch (kinds[j]) {
        case 0:
          t.lo[k] = p.data;
          t.hi[k] = hi;
          break;
        case 1:
          t.lo[k] = p.end;
          t.hi[k] = hi;
          break;
        case 2:
          t.lo[k] = p.meta;
          t.hi[k] = hi;
          break;
        case 3:
          t.lo[k] = (p.end - p.data) | 0;
          t.hi[k] = 0;
          break;
        default: {
          const f = this.packetSlots[j]!;
          if (f.pointer) {
            t.lo[k] = f.pointer(p);
            t.hi[k] = hi;
          } else {
            t.lo[k] = f.derived!(p) | 0;
            t.hi[k] = 0;
          }
        }
      }
    }
  }

  get pointer(): { lo: number; hi: number } {
    return { lo: 0, hi: REGION_HI_BASE + this.region.index };
  }

  fieldAt(off: number): CtxField | undefined {
    return this.fields.find((f) => off >= f.offset && off < f.offset + f.size * (f.count ?? 1));
  }

  /** The field an access lands in, or the verifier's reason to refuse it. */
  private access(off: number, n: number, write: boolean): CtxField | string {
    const what = `${write ? 'write' : 'read'} of ${n} bytes at ctx+${off}`;
    const f = this.fieldAt(off);
    if (!f) return `${what}: no field of ${this.structName} there (the verifier refuses this)`;
    if (off % n !== 0) return `${what} is misaligned (the verifier refuses this)`;
    const why = this.rule(f, off, n, write);
    if (why) return `${what}: ${why} (the verifier refuses this)`;
    if (!f.raw && (off - f.offset) % f.size + n > f.size) return `${what} crosses the end of ${this.structName}.${f.name} (the verifier refuses this)`;
    return f;
  }

  private read(off: number, n: number): Uint8Array | string {
    const f = this.access(off, n, false);
    if (typeof f === 'string') return f;
    if (f.pointer || f.derived) return `${this.structName}.${f.name} is not memory a helper can read`;
    return this.bytes.slice(off, off + n);
  }

  private loadValue(off: number, n: number): { lo: number; hi: number } | string {
    const f = this.access(off, n, false);
    if (typeof f === 'string') return f;
    if (f.pointer) return this.packet.pointer(f.pointer(this.packet));
    if (f.raw) return this.rawValue(off, n);
    if (f.size === 8) return { lo: this.dv.getInt32(off, true), hi: this.dv.getInt32(off + 4, true) };
    const at = off - ((off - f.offset) % f.size);
    const value = f.derived ? f.derived(this.packet) >>> 0 : f.size === 1 ? this.bytes[at]! : this.dv.getUint32(at, true);
    // The rewrite loads the kernel field whole; only loads narrower than it are shifted and masked.
    if (n >= (f.target ?? f.size)) return { lo: value | 0, hi: 0 };
    return { lo: (value >>> (8 * (off - at))) & ((1 << (8 * n)) - 1), hi: 0 };
  }

  private rawValue(off: number, n: number): { lo: number; hi: number } {
    switch (n) {
      case 1:
        return { lo: this.bytes[off]!, hi: 0 };
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
    if (f.raw || f.size === 8) {
      this.bytes.set(b, off);
      this.syncPlainSlots(off, off + b.length);
      return undefined;
    }
    const value = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    if (f.target === 2) {
      // skb->queue_mapping keeps its value when the program stores NO_QUEUE_MAPPING or more.
      if (f.name === 'queue_mapping' && value >= 0xffff) return undefined;
      this.dv.setUint32(off, value & 0xffff, true);
    } else {
      this.dv.setUint32(off, value, true);
    }
    this.syncPlainSlots(off, off + 4);
    return undefined;
  }

  /** Sets a field by name (`mark`, `cb[2]`, `ingress_ifindex`) in the ctx_in image, for --ctx. */
  set(spec: string, value: bigint): void {
    const m = /^([a-z_0-9]+)(?:\[(\d+)\])?$/.exec(spec);
    const f = m ? this.fields.find((x) => x.name === m[1]) : undefined;
    if (!m || !f) throw new RewindError(`--ctx: ${this.structName} has no field '${spec}' (fields: ${this.fields.map((x) => x.name).join(', ')})`);
    const idx = m[2] === undefined ? 0 : Number(m[2]);
    if (idx >= (f.count ?? 1)) throw new RewindError(`--ctx: ${this.structName}.${f.name} has ${f.count ?? 1} elements`);
    const at = f.offset + idx * f.size;
    if (value < 0n || value >= 1n << BigInt(8 * f.size)) throw new RewindError(`--ctx: ${spec}=${value} does not fit in ${f.size} bytes`);
    this.xdpNone = false;
    for (let k = 0; k < f.size; k++) this.bytes[at + k] = Number((value >> BigInt(8 * k)) & 0xffn);
    this.syncPlainSlots(at, at + f.size);
  }

  /** A field's value as stored (the first element of an array field). */
  get(name: string): number {
    const f = this.field(name);
    if (f.derived) return f.derived(this.packet);
    return f.size === 8 ? Number(this.dv.getBigUint64(f.offset, true)) : f.size === 4 ? this.dv.getUint32(f.offset, true) : this.bytes[f.offset]!;
  }

  setField(name: string, value: number): void {
    const f = this.field(name);
    this.xdpNone = false;
    if (f.size === 4) this.dv.setUint32(f.offset, value >>> 0, true);
    else if (f.size === 8) this.dv.setBigUint64(f.offset, BigInt(value), true);
    else this.bytes[f.offset] = value;
    this.syncPlainSlots(f.offset, f.offset + f.size);
  }

  private field(name: string): CtxField {
    const f = this.byName.get(name);
    if (!f) throw new Error(`internal: ${this.structName} has no field ${name}`);
    return f;
  }

  /**
   * Turns the ctx_in image in `bytes` (from --ctx-file and --ctx, or all zero when `ctxIn` is
   * 'none') into the context the program sees, and places the packet as the kernel's test run
   * does: bpf_prog_test_run_xdp()'s xdp_convert_md_to_buff(), bpf_prog_test_run_skb()'s
   * eth_type_trans() on the loopback device and convert___skb_to_skb(). A ctx_in the kernel
   * refuses is an error naming the field.
   */
  prepare(type: ProgType, ctxIn: 'none' | 'bytes' | 'fields'): void {
    if (this.structName === 'xdp_md') this.prepareXdp(ctxIn);
    else this.prepareSkb(type, ctxIn);
    // The packet slots followed the packet (PacketBuffer.refresh). Without a ctx_in, every byte
    // written since `clear` went through setWord/setField, which keep the table; otherwise the
    // caller wrote the bytes directly.
    if (ctxIn !== 'none' || type === 'cgroup_skb') this.syncPlainSlots(0, this.bytes.length);
    this.xdpNone = this.structName === 'xdp_md' && ctxIn === 'none';
  }

  /**
   * clear() and prepare('xdp', 'none') for the next run of a context whose last run also had no
   * ctx_in, in a few stores: false when the context holds anything else.
   */
  repeatXdpNone(): boolean {
    if (!this.xdpNone) return false;
    const w = this.words;
    w[0] = w[1] = w[2] = 0;
    return true;
  }

  /** Zeroes the context's bytes (the ctx_in image before the caller's fields go in). */
  clear(): void {
    this.xdpNone = false;
    // Word stores beat TypedArray#fill's call overhead for small contexts.
    const w = this.words;
    if (w.length > 16) w.fill(0);
    else for (let k = 0; k < w.length; k++) w[k] = 0;
    const t = this.table;
    const dirty = this.tableDirty;
    while (dirty.length) {
      const k = dirty.pop()!;
      if (t) t.lo[k] = 0;
    }
  }

  /** Writes a u32 field at `off` (a multiple of 4) and its table entry. */
  private setWord(off: number, value: number): void {
    this.dv.setUint32(off, value >>> 0, true);
    this.syncPlainSlots(off, off + 4);
  }

  private refuse(field: string, why: string, errno = 'EINVAL'): never {
    throw new RewindError(`ctx_in: ${this.structName}.${field} ${why} (the kernel's test run refuses it with ${errno})`);
  }

  private prepareXdp(ctxIn: 'none' | 'bytes' | 'fields'): void {
    const p = this.packet;
    const size = p.end - p.data;
    if (ctxIn !== 'none') {
      const metalen = this.dv.getUint32(0, true);
      // --ctx fields leave data_end out: it can only be the packet's size.
      if (ctxIn === 'fields' && this.dv.getUint32(4, true) === 0) this.dv.setUint32(4, size, true);
      if (this.dv.getUint32(8, true) !== 0) this.refuse('data_meta', 'must be 0: there is no data before the metadata');
      // A smaller data_end makes the kernel put the rest of data_in in fragments (multi-buffer
      // XDP), which Rewind does not model.
      if (this.dv.getUint32(4, true) !== size) throw new RewindError(`ctx_in: xdp_md.data_end must be the packet's size, ${size} (Rewind does not model the multi-buffer packets a smaller data_end makes)`);
      if (metalen > size) this.refuse('data', 'is past data_end');
      if (size - metalen < 14) this.refuse('data', 'leaves less than an Ethernet header after the metadata');
      if (metalen % 4 !== 0 || metalen > 255) this.refuse('data', 'is the metadata length, a multiple of 4 up to 255');
      if (this.dv.getUint32(20, true) !== 0) this.refuse('egress_ifindex', 'must be 0');
      if (this.get('ingress_ifindex') === 0 && this.get('rx_queue_index') !== 0) this.refuse('rx_queue_index', 'needs an ingress_ifindex');
      if (this.get('ingress_ifindex') === 1 && this.get('rx_queue_index') !== 0) this.refuse('rx_queue_index', 'must be 0: the loopback device has one queue');
      if (metalen) {
        // The first `data` bytes of data_in are the metadata, taken from the headroom.
        const bytes = p.bytes();
        p.load(bytes, bytes.length, p.headroom - metalen);
        p.data = p.meta + metalen;
        p.refresh();
      }
    }
    // Without an ingress device the run's rx queue is the loopback device's.
    if (this.dv.getUint32(XDP_INGRESS_IFINDEX, true) === 0) this.setWord(XDP_INGRESS_IFINDEX, 1);
    // data, data_end and data_meta read as pointers; their bytes stay zero.
    this.dv.setUint32(0, 0);
    this.dv.setUint32(4, 0);
    this.dv.setUint32(8, 0);
  }

  private prepareSkb(type: ProgType, ctxIn: 'none' | 'bytes' | 'fields'): void {
    const p = this.packet;
    const len = p.end - p.data;
    const given = ctxIn !== 'none';
    if (given) {
      // convert___skb_to_skb(): only these fields may be set.
      const allowed = new Set(['mark', 'priority', 'ingress_ifindex', 'ifindex', 'cb', 'tstamp', 'wire_len', 'gso_segs', 'gso_size', 'hwtstamp']);
      for (let off = 0; off < this.bytes.length; off++) {
        if (!this.bytes[off]) continue;
        const f = this.fieldAt(off);
        if (!f || !allowed.has(f.name)) this.refuse(f?.name ?? `+${off}`, 'must be 0 in ctx_in');
      }
      const wire = this.get('wire_len');
      if (wire !== 0 && (wire < len || wire > 65536)) this.refuse('wire_len', `must be 0 or between the packet's length (${len}) and 65536`);
      if (this.get('gso_segs') > 65535) this.refuse('gso_segs', 'must be at most GSO_MAX_SEGS (65535)');
      if (wire === 0) this.setField('wire_len', len);
      this.setField('gso_size', this.get('gso_size') & 0xffff);
    }
    // eth_type_trans() on the loopback device (or the ctx_in ifindex when above 1). Every skb
    // program starts at the Ethernet header, as tc programs do in the kernel's test run and as
    // socket filters do on a packet socket (tcpdump's filters); the test run would start socket
    // filters at the network header and report the Ethernet header zeroed.
    if (this.dv.getUint32(SKB_IFINDEX, true) <= 1) this.setWord(SKB_IFINDEX, 1);
    // The flat memory the buffer lives in (buffer offset o is at base + o): no view per run.
    const buf = p.mem.u8;
    p.mac = p.data;
    p.network = p.data + 14;
    if (len >= 14) {
      const d = p.region.base + p.data;
      // The loopback device's address and broadcast address are all zero.
      const zero = (buf[d]! | buf[d + 1]! | buf[d + 2]! | buf[d + 3]! | buf[d + 4]! | buf[d + 5]!) === 0;
      const pktType = zero ? 0 : buf[d]! & 1 ? 2 : 3;
      this.setWord(SKB_PKT_TYPE, pktType);
      const etherType = (buf[d + 12]! << 8) | buf[d + 13]!;
      // eth_proto_is_802_3(), else 802.3 raw (0xffff SAP) or 802.2 LLC.
      let proto = etherType;
      if (etherType < 0x600) proto = len >= 16 && buf[d + 14] === 0xff && buf[d + 15] === 0xff ? 0x0001 : 0x0004;
      this.setWord(SKB_PROTOCOL, ((proto & 0xff) << 8) | (proto >> 8));
      if (type === 'cgroup_skb') this.socketFromHeader(proto);
    }
  }

  /** The test run's socket takes its addresses from the IP header (cgroup skb programs read them). */
  private socketFromHeader(proto: number): void {
    const p = this.packet;
    const buf = p.buffer();
    const l3 = p.data + 14;
    if (proto === 0x0800) {
      this.setField('family', 2);
      if (p.end - l3 >= 20) {
        this.bytes.set(buf.subarray(l3 + 12, l3 + 16), 96); // local_ip4 = saddr
        this.bytes.set(buf.subarray(l3 + 16, l3 + 20), 92); // remote_ip4 = daddr
      }
    } else if (proto === 0x86dd) {
      this.setField('family', 10);
      if (p.end - l3 >= 40) {
        this.bytes.set(buf.subarray(l3 + 8, l3 + 24), 116);
        this.bytes.set(buf.subarray(l3 + 24, l3 + 40), 100);
      }
    }
  }

  /** After the run: xdp_convert_buff_to_md() writes data and data_end back as offsets from data_meta. */
  finishRun(): void {
    if (this.structName !== 'xdp_md') return;
    this.dv.setUint32(0, this.packet.data - this.packet.meta, true);
    this.dv.setUint32(4, this.packet.end - this.packet.meta, true);
  }
}

/** The context of a program type, or undefined for types Rewind runs without one. */
export function createContext(mem: Memory, type: ProgType, packet: PacketBuffer): Context | undefined {
  if (type === 'xdp') return new Context(mem, mem.nextIndex(), 'xdp_md', XDP_MD, XDP_MD_SIZE, packet, xdpAccess);
  if (type === 'tc' || type === 'socket' || type === 'cgroup_skb') return new Context(mem, mem.nextIndex(), '__sk_buff', SK_BUFF, SK_BUFF_SIZE, packet, skbAccess(type));
  return undefined;
}
