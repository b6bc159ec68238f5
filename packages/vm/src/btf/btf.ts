// BTF, the BPF Type Format of the `.BTF` ELF section (Documentation/bpf/btf.rst,
// include/uapi/linux/btf.h). Little-endian only: BPF objects built on x86 and arm64 are.

import { RewindError } from '../errors.js';

/** Malformed or unusable BTF: `<file>: <what> (section .BTF, offset 0x..)`. */
export class BtfError extends RewindError {
  override name = 'BtfError';
  constructor(
    readonly file: string,
    readonly what: string,
    readonly section = '.BTF',
    readonly offset?: number,
  ) {
    super(`${file}: ${what} (section ${section}${offset === undefined ? '' : `, offset 0x${offset.toString(16)}`})`);
  }
}

export const BTF_MAGIC = 0xeb9f;

/** BTF_KIND_* of include/uapi/linux/btf.h, by their number. */
export const BTF_KIND_NAMES = [
  'void',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
] as const;
export type BtfKind = (typeof BTF_KIND_NAMES)[number];

/** Linkage of a FUNC (its vlen) or a VAR: BTF_FUNC_STATIC/GLOBAL/EXTERN, BTF_VAR_STATIC/GLOBAL_ALLOCATED/GLOBAL_EXTERN. */
export type BtfLinkage = 'static' | 'global' | 'extern';
const LINKAGES: readonly BtfLinkage[] = ['static', 'global', 'extern'];

interface BtfBase {
  /** The type id: its index in `Btf.types`, 0 being void. */
  readonly id: number;
  /** The name, '' for anonymous types. */
  readonly name: string;
}

export interface BtfVoid extends BtfBase {
  readonly kind: 'void';
}
export interface BtfInt extends BtfBase {
  readonly kind: 'int';
  readonly size: number;
  /** BTF_INT_BITS: the value's bit count. */
  readonly bits: number;
  /** BTF_INT_OFFSET: the value's bit offset inside `size` bytes (legacy bitfields). */
  readonly bitOffset: number;
  /** BTF_INT_ENCODING bits: BTF_INT_SIGNED (1), BTF_INT_CHAR (2), BTF_INT_BOOL (4). */
  readonly signed: boolean;
  readonly char: boolean;
  readonly bool: boolean;
}
export interface BtfPtr extends BtfBase {
  readonly kind: 'ptr';
  readonly type: number;
}
export interface BtfArray extends BtfBase {
  readonly kind: 'array';
  readonly type: number;
  readonly indexType: number;
  readonly nelems: number;
}
export interface BtfMember {
  readonly name: string;
  readonly type: number;
  /** Offset of the member from the start of the struct, in bits. */
  readonly bitOffset: number;
  /** Bitfield width with kind_flag set, else 0 (a whole member). */
  readonly bitSize: number;
}
export interface BtfComposite extends BtfBase {
  readonly kind: 'struct' | 'union';
  readonly size: number;
  readonly members: readonly BtfMember[];
}
export interface BtfEnumValue {
  readonly name: string;
  readonly value: bigint;
}
export interface BtfEnum extends BtfBase {
  readonly kind: 'enum' | 'enum64';
  readonly size: number;
  /** kind_flag: the enumerators are signed. */
  readonly signed: boolean;
  readonly values: readonly BtfEnumValue[];
}
export interface BtfFwd extends BtfBase {
  readonly kind: 'fwd';
  /** kind_flag: a forward-declared union rather than a struct. */
  readonly union: boolean;
}
export interface BtfRef extends BtfBase {
  readonly kind: 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';
  readonly type: number;
}
export interface BtfFunc extends BtfBase {
  readonly kind: 'func';
  /** The FUNC_PROTO. */
  readonly type: number;
  readonly linkage: BtfLinkage;
}
export interface BtfParam {
  readonly name: string;
  /** 0 with an empty name for the `...` of a variadic function. */
  readonly type: number;
}
export interface BtfFuncProto extends BtfBase {
  readonly kind: 'func_proto';
  /** The return type, 0 for void. */
  readonly type: number;
  readonly params: readonly BtfParam[];
}
export interface BtfVar extends BtfBase {
  readonly kind: 'var';
  readonly type: number;
  readonly linkage: BtfLinkage;
}
export interface BtfVarSecinfo {
  /** The VAR (or FUNC, for .ksyms). */
  readonly type: number;
  readonly offset: number;
  readonly size: number;
}
export interface BtfDatasec extends BtfBase {
  readonly kind: 'datasec';
  readonly size: number;
  readonly vars: readonly BtfVarSecinfo[];
}
export interface BtfFloat extends BtfBase {
  readonly kind: 'float';
  readonly size: number;
}
export interface BtfDeclTag extends BtfBase {
  readonly kind: 'decl_tag';
  readonly type: number;
  /** -1 for the type itself, else the member or parameter index. */
  readonly componentIdx: number;
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfPtr
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfFwd
  | BtfRef
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

/** Parsed `.BTF`: types indexed by id (types[0] is void) and the string section. */
export class Btf {
  constructor(
    readonly file: string,
    private readonly list: BtfType[],
    private readonly strings: Uint8Array,
    /** The .BTF section it was parsed from (a trace stores it, to show values through their types). */
    readonly raw?: Uint8Array,
  ) {}

  /** All types, indexed by id; `types[0]` is void. */
  get types(): readonly BtfType[] {
    return this.list;
  }

  type(id: number): BtfType {
    const t = this.list[id];
    if (t === undefined) throw new BtfError(this.file, `type id ${id} out of range (${this.list.length} types)`);
    return t;
  }

  /** The NUL-terminated string at `offset` in the string section. */
  str(offset: number): string {
    const s = readCString(this.strings, offset);
    if (s === undefined) throw new BtfError(this.file, `string offset 0x${offset.toString(16)} out of range`);
    return s;
  }

  /** The first type with this name (and kind), as libbpf's btf__find_by_name_kind. */
  find(name: string, kind?: BtfKind): BtfType | undefined {
    return this.list.find((t) => t.name === name && (kind === undefined || t.kind === kind));
  }

  /**
   * Replaces a type. The ELF loader uses it for the DATASEC fixup libbpf does
   * (clang leaves DATASEC sizes and global variable offsets zero in objects).
   */
  replace(t: BtfType): void {
    if (t.id <= 0 || t.id >= this.list.length) throw new BtfError(this.file, `type id ${t.id} out of range`);
    this.list[t.id] = t;
  }
}

const utf8 = new TextDecoder('utf-8');

function readCString(bytes: Uint8Array, offset: number): string | undefined {
  if (!Number.isInteger(offset) || offset < 0 || offset >= bytes.length) return undefined;
  const end = bytes.indexOf(0, offset);
  if (end < 0) return undefined;
  return utf8.decode(bytes.subarray(offset, end));
}

const HDR_MIN = 24;
const TYPE_HDR = 12;
/** The kernel's MAX_RESOLVE_DEPTH: how many typedefs and modifiers a type may chain. */
export const MAX_RESOLVE_DEPTH = 32;

/** Parses a `.BTF` section. */
export function parseBtf(bytes: Uint8Array, file = '<btf>'): Btf {
  const err = (what: string, offset?: number): BtfError => new BtfError(file, what, '.BTF', offset);
  if (bytes.length < HDR_MIN) throw err(`truncated header (${bytes.length} bytes, need ${HDR_MIN})`, 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint16(0, true);
  if (magic === 0x9feb) throw err('big-endian BTF is not supported', 0);
  if (magic !== BTF_MAGIC) throw err(`bad magic 0x${magic.toString(16)} (expected 0xeb9f)`, 0);
  const version = dv.getUint8(2);
  if (version !== 1) throw err(`unsupported version ${version}`, 2);
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < HDR_MIN || hdrLen > bytes.length) throw err(`bad header length ${hdrLen}`, 4);
  const typeOff = dv.getUint32(8, true);
  const typeLen = dv.getUint32(12, true);
  const strOff = dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  const dataLen = bytes.length - hdrLen;
  if (typeOff % 4 !== 0) throw err(`type section offset 0x${typeOff.toString(16)} is not 4-byte aligned`, 8);
  if (typeOff + typeLen > dataLen) throw err(`type section [0x${typeOff.toString(16)}, +${typeLen}) out of range`, 8);
  if (strOff + strLen > dataLen) throw err(`string section [0x${strOff.toString(16)}, +${strLen}) out of range`, 16);
  if (typeOff < strOff + strLen && strOff < typeOff + typeLen) throw err('type and string sections overlap', 8);
  const strings = bytes.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
  // libbpf's btf_parse_str_sec: non-empty, starting with the empty string, NUL-terminated.
  if (strLen === 0 || strings[0] !== 0 || strings[strLen - 1] !== 0) {
    throw err('string section must start and end with a NUL byte', hdrLen + strOff);
  }
  const name = (nameOff: number, at: number): string => {
    const s = readCString(strings, nameOff);
    if (s === undefined) throw err(`name offset 0x${nameOff.toString(16)} out of range`, at);
    return s;
  };

  const types: BtfType[] = [{ kind: 'void', id: 0, name: '' }];
  const refs: { id: number; ref: number; at: number }[] = [];
  const start = hdrLen + typeOff;
  const end = start + typeLen;
  let p = start;
  while (p < end) {
    const at = p;
    if (p + TYPE_HDR > end) throw err('truncated type header', at);
    const id = types.length;
    const nm = name(dv.getUint32(p, true), at);
    const info = dv.getUint32(p + 4, true);
    const sizeOrType = dv.getUint32(p + 8, true);
    p += TYPE_HDR;
    const vlen = info & 0xffff;
    const kindNum = (info >>> 24) & 0x1f;
    const kflag = (info & 0x80000000) !== 0;
    const kind = BTF_KIND_NAMES[kindNum];
    if (kind === undefined || kind === 'void') throw err(`type [${id}] has unknown kind ${kindNum}`, at);
    const need = (n: number): void => {
      if (p + n > end) throw err(`type [${id}] ${kind} is truncated`, at);
    };
    const ref = (t: number): number => {
      refs.push({ id, ref: t, at });
      return t;
    };
    switch (kind) {
      case 'int': {
        need(4);
        const v = dv.getUint32(p, true);
        p += 4;
        const enc = (v >>> 24) & 0x0f;
        const bits = v & 0xff;
        const bitOffset = (v >>> 16) & 0xff;
        if (![1, 2, 4, 8, 16].includes(sizeOrType) || bits === 0 || bits + bitOffset > sizeOrType * 8) {
          throw err(`type [${id}] int has invalid size ${sizeOrType}, bits ${bits}, offset ${bitOffset}`, at);
        }
        types.push({
          kind, id, name: nm, size: sizeOrType, bits, bitOffset,
          signed: (enc & 1) !== 0, char: (enc & 2) !== 0, bool: (enc & 4) !== 0,
        });
        break;
      }
      case 'ptr':
        types.push({ kind, id, name: nm, type: ref(sizeOrType) });
        break;
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
        types.push({ kind, id, name: nm, type: ref(sizeOrType) });
        break;
      case 'fwd':
        types.push({ kind, id, name: nm, union: kflag });
        break;
      case 'float':
        if (![2, 4, 8, 12, 16].includes(sizeOrType)) throw err(`type [${id}] float has invalid size ${sizeOrType}`, at);
        types.push({ kind, id, name: nm, size: sizeOrType });
        break;
      case 'array': {
        need(12);
        const type = ref(dv.getUint32(p, true));
        const indexType = ref(dv.getUint32(p + 4, true));
        const nelems = dv.getUint32(p + 8, true);
        p += 12;
        types.push({ kind, id, name: nm, type, indexType, nelems });
        break;
      }
      case 'struct':
      case 'union': {
        need(12 * vlen);
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const off = dv.getUint32(p + 8, true);
          members.push({
            name: name(dv.getUint32(p, true), p),
            type: ref(dv.getUint32(p + 4, true)),
            // With kind_flag the offset packs BTF_MEMBER_BITFIELD_SIZE (8 bits) over a 24-bit bit offset.
            bitOffset: kflag ? off & 0xffffff : off,
            bitSize: kflag ? off >>> 24 : 0,
          });
        }
        types.push({ kind, id, name: nm, size: sizeOrType, members });
        break;
      }
      case 'enum': {
        need(8 * vlen);
        const values: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++, p += 8) {
          const v = kflag ? dv.getInt32(p + 4, true) : dv.getUint32(p + 4, true);
          values.push({ name: name(dv.getUint32(p, true), p), value: BigInt(v) });
        }
        types.push({ kind, id, name: nm, size: sizeOrType, signed: kflag, values });
        break;
      }
      case 'enum64': {
        need(12 * vlen);
        const values: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          const raw = (BigInt(dv.getUint32(p + 8, true)) << 32n) | BigInt(dv.getUint32(p + 4, true));
          values.push({ name: name(dv.getUint32(p, true), p), value: kflag ? BigInt.asIntN(64, raw) : raw });
        }
        types.push({ kind, id, name: nm, size: sizeOrType, signed: kflag, values });
        break;
      }
      case 'func': {
        const linkage = LINKAGES[vlen];
        if (linkage === undefined) throw err(`type [${id}] func has unknown linkage ${vlen}`, at);
        types.push({ kind, id, name: nm, type: ref(sizeOrType), linkage });
        break;
      }
      case 'func_proto': {
        need(8 * vlen);
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++, p += 8) {
          params.push({ name: name(dv.getUint32(p, true), p), type: ref(dv.getUint32(p + 4, true)) });
        }
        types.push({ kind, id, name: nm, type: ref(sizeOrType), params });
        break;
      }
      case 'var': {
        need(4);
        const l = dv.getUint32(p, true);
        p += 4;
        const linkage = LINKAGES[l];
        if (linkage === undefined) throw err(`type [${id}] var has unknown linkage ${l}`, at);
        types.push({ kind, id, name: nm, type: ref(sizeOrType), linkage });
        break;
      }
      case 'datasec': {
        need(12 * vlen);
        const vars: BtfVarSecinfo[] = [];
        for (let i = 0; i < vlen; i++, p += 12) {
          vars.push({ type: ref(dv.getUint32(p, true)), offset: dv.getUint32(p + 4, true), size: dv.getUint32(p + 8, true) });
        }
        types.push({ kind, id, name: nm, size: sizeOrType, vars });
        break;
      }
      case 'decl_tag': {
        need(4);
        const componentIdx = dv.getInt32(p, true);
        p += 4;
        types.push({ kind, id, name: nm, type: ref(sizeOrType), componentIdx });
        break;
      }
    }
  }
  for (const r of refs) {
    if (r.ref >= types.length) throw err(`type [${r.id}] refers to type id ${r.ref} out of range`, r.at);
  }
  return new Btf(file, types, strings, bytes);
}

/** True for the kinds that only qualify or rename another type. */
function isModifier(t: BtfType): t is BtfRef {
  return t.kind === 'typedef' || t.kind === 'volatile' || t.kind === 'const' || t.kind === 'restrict' || t.kind === 'type_tag';
}

/** Skips typedef, const, volatile, restrict and type_tag (libbpf's skip_mods_and_typedefs); returns the id reached. */
export function resolveType(btf: Btf, id: number): number {
  let t = btf.type(id);
  for (let depth = 0; isModifier(t); depth++) {
    if (depth >= MAX_RESOLVE_DEPTH) throw new BtfError(btf.file, `type [${id}] has a typedef/modifier loop`);
    t = btf.type(t.type);
  }
  return t.id;
}

/** The size in bytes of a value of type `id`, as libbpf's btf__resolve_size (pointers are 8 bytes). */
export function sizeOf(btf: Btf, id: number): number {
  let nelems = 1;
  let t = btf.type(id);
  for (let depth = 0; ; depth++) {
    if (depth > MAX_RESOLVE_DEPTH) throw new BtfError(btf.file, `type [${id}] is nested too deeply to size`);
    switch (t.kind) {
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'datasec':
      case 'float':
        return checkedSize(btf, id, nelems * t.size);
      case 'ptr':
        return checkedSize(btf, id, nelems * 8);
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'var':
      case 'decl_tag':
        t = btf.type(t.type);
        break;
      case 'array':
        nelems *= t.nelems;
        if (nelems > 0xffffffff) throw new BtfError(btf.file, `type [${id}] is larger than 4 GiB`);
        t = btf.type(t.type);
        break;
      default:
        throw new BtfError(btf.file, `type [${t.id}] ${t.kind} has no size`);
    }
  }
}

function checkedSize(btf: Btf, id: number, size: number): number {
  if (size > 0xffffffff) throw new BtfError(btf.file, `type [${id}] is larger than 4 GiB`);
  return size;
}

/** A struct or union member with its layout in bits. */
export interface BtfField {
  readonly name: string;
  readonly type: number;
  /** Offset from the start of the enclosing struct, in bits. */
  readonly bitOffset: number;
  /** Width in bits for a bitfield, 0 for a whole member. */
  readonly bitSize: number;
}

/**
 * The members of the struct or union `id` (after typedefs and modifiers), with bit offsets.
 * Bitfields encoded the pre-kind_flag way, as an INT whose bits/offset narrow the member,
 * are reported with their effective bit offset and width too.
 */
export function fieldsOf(btf: Btf, id: number): BtfField[] {
  const t = btf.type(resolveType(btf, id));
  if (t.kind !== 'struct' && t.kind !== 'union') {
    throw new BtfError(btf.file, `type [${id}] is ${t.kind}, not a struct or union`);
  }
  return t.members.map((m) => {
    if (m.bitSize === 0) {
      const mt = btf.type(resolveType(btf, m.type));
      if (mt.kind === 'int' && (mt.bitOffset !== 0 || mt.bits !== mt.size * 8)) {
        return { name: m.name, type: m.type, bitOffset: m.bitOffset + mt.bitOffset, bitSize: mt.bits };
      }
    }
    return { name: m.name, type: m.type, bitOffset: m.bitOffset, bitSize: m.bitSize };
  });
}
