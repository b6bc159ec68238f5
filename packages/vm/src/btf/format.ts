// Types and values in C spelling, for the debugger's panes.

import { type Btf, BtfError, type BtfType, fieldsOf, MAX_RESOLVE_DEPTH, resolveType, sizeOf } from './btf.js';

/**
 * The C spelling of type `id`: `struct flow_key`, `__u32`, `unsigned int *`, `char[16]`,
 * `int (*)(int, const char *)`. Anonymous structs, unions and enums read `struct {...}`;
 * type tags are left out. A FUNC reads as its prototype with its name, a VAR as a declaration.
 */
export function typeName(btf: Btf, id: number): string {
  return declare(btf, id, '', 0);
}

/** C declarator composition: `inner` is what is being declared (a name, `*`, `[4]`, ...). */
function declare(btf: Btf, id: number, inner: string, depth: number): string {
  if (depth > MAX_RESOLVE_DEPTH) throw new BtfError(btf.file, `type [${id}] is nested too deeply to name`);
  const t = btf.type(id);
  const base = (spelling: string): string => (inner === '' ? spelling : inner.startsWith('[') ? spelling + inner : `${spelling} ${inner}`);
  switch (t.kind) {
    case 'void':
      return base('void');
    case 'int':
    case 'float':
    case 'typedef':
      return base(t.name);
    case 'struct':
    case 'union':
    case 'enum':
      return base(`${t.kind} ${t.name === '' ? '{...}' : t.name}`);
    case 'enum64':
      return base(`enum ${t.name === '' ? '{...}' : t.name}`);
    case 'fwd':
      return base(`${t.union ? 'union' : 'struct'} ${t.name}`);
    case 'ptr':
      return declare(btf, t.type, inner === '' ? '*' : `*${inner}`, depth + 1);
    case 'array': {
      const wrapped = inner.startsWith('*') ? `(${inner})` : inner;
      return declare(btf, t.type, `${wrapped}[${t.nelems}]`, depth + 1);
    }
    case 'const':
    case 'volatile':
    case 'restrict': {
      // A qualified pointer puts the qualifier after its `*`: `char * const`.
      const target = btf.type(t.type);
      if (target.kind === 'ptr') {
        return declare(btf, target.type, `* ${t.kind}${inner === '' ? '' : ` ${inner}`}`, depth + 1);
      }
      return `${t.kind} ${declare(btf, t.type, inner, depth + 1)}`;
    }
    case 'type_tag':
    case 'decl_tag':
      return declare(btf, t.type, inner, depth + 1);
    case 'func_proto': {
      const params = t.params.length === 0
        ? 'void'
        : t.params.map((p) => (p.type === 0 && p.name === '' ? '...' : declare(btf, p.type, '', depth + 1))).join(', ');
      const wrapped = inner.startsWith('*') ? `(${inner})` : inner;
      return declare(btf, t.type, `${wrapped}(${params})`, depth + 1);
    }
    case 'func':
      return declare(btf, t.type, t.name + inner, depth + 1);
    case 'var':
      return declare(btf, t.type, t.name, depth + 1);
    case 'datasec':
      return `SEC("${t.name}")`;
  }
}

export interface FormatValueOptions {
  /** Array elements shown before `...`; default 64. */
  maxElements?: number;
}

/**
 * Renders a value of type `id` held in `bytes` (little-endian) the way a C initializer
 * would spell it: `{ .saddr = 0x0a000001, .dport = 80, .proto = 6 }`.
 *
 * - integers in decimal, signed or unsigned as declared; unsigned integers in a member
 *   whose name contains `addr` in zero-padded hex (IPv4 and other addresses);
 * - `char` is shown as a character when printable; `_Bool` as true/false;
 * - arrays of char-sized integers as a string when every byte up to the first NUL is
 *   printable and the rest is zero, otherwise `{ 1, 2, 3 }`, cut after `maxElements`;
 * - pointers in hex; enums by enumerator name, or the number when none matches;
 * - structs and unions with every member designated (a union shows all its members,
 *   as a debugger does), bitfields extracted and sign-extended as declared, members of
 *   anonymous structs and unions inline;
 * - a DATASEC (the value type of `.data`, `.bss`, `.rodata` maps) as its variables.
 */
export function formatValue(btf: Btf, id: number, bytes: Uint8Array, opts: FormatValueOptions = {}): string {
  const size = sizeOf(btf, id);
  if (bytes.length < size) {
    throw new BtfError(btf.file, `value of ${bytes.length} bytes is too short for ${typeName(btf, id)} (${size} bytes)`);
  }
  const f = new ValueFormatter(btf, bytes, opts.maxElements ?? 64);
  return f.value(id, 0, '', 0);
}

const PRINTABLE = (b: number): boolean => b >= 0x20 && b < 0x7f;

const MAX_PARTS = 1 << 20;

class ValueFormatter {
  private readonly dv: DataView;
  private budget = 0;
  constructor(
    private readonly btf: Btf,
    private readonly bytes: Uint8Array,
    private readonly maxElements: number,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Malformed BTF can place members outside their struct or nest arrays without end. */
  private check(off: number, size: number): void {
    if (!Number.isInteger(off) || off < 0 || off + size > this.bytes.length) {
      throw new BtfError(this.btf.file, `a member at byte ${off} (${size} bytes) lies outside the ${this.bytes.length}-byte value`);
    }
  }

  private tick(): void {
    if (++this.budget > MAX_PARTS) throw new BtfError(this.btf.file, `value has more than ${MAX_PARTS} parts to format`);
  }

  /** The value of type `id` at byte `off`; `field` is the member name it is shown under. */
  value(id: number, off: number, field: string, depth: number): string {
    if (depth > MAX_RESOLVE_DEPTH) throw new BtfError(this.btf.file, `type [${id}] is nested too deeply to format`);
    this.tick();
    const t = this.btf.type(resolveType(this.btf, id));
    switch (t.kind) {
      case 'int': {
        let v = this.unsigned(off, t.size);
        if (t.bitOffset !== 0 || t.bits !== t.size * 8) v = (v >> BigInt(t.bitOffset)) & ((1n << BigInt(t.bits)) - 1n);
        return this.scalar(t, v, t.bits, field);
      }
      case 'enum':
      case 'enum64':
        return this.scalar(t, this.unsigned(off, t.size), t.size * 8, field);
      case 'ptr':
        return `0x${this.unsigned(off, 8).toString(16)}`;
      case 'float':
        return this.float(off, t.size);
      case 'array':
        return this.array(t.type, t.nelems, off, depth);
      case 'struct':
      case 'union':
        return this.composite(t.id, off, depth);
      case 'datasec': {
        const vars = [...t.vars].sort((a, b) => a.offset - b.offset);
        const parts = vars.map((v) => {
          const vt = this.btf.type(v.type);
          return `.${vt.name} = ${this.value(v.type, off + v.offset, vt.name, depth + 1)}`;
        });
        return parts.length === 0 ? '{}' : `{ ${parts.join(', ')} }`;
      }
      case 'var':
        return this.value(t.type, off, t.name, depth + 1);
      default:
        throw new BtfError(this.btf.file, `cannot format a value of type ${typeName(this.btf, id)}`);
    }
  }

  private unsigned(off: number, size: number): bigint {
    this.check(off, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.bytes[off + i]!);
    return v;
  }

  /** An integer, enum or bool of `bits` width holding the raw (zero-extended) value `raw`. */
  private scalar(t: BtfType, raw: bigint, bits: number, field: string): string {
    if (t.kind === 'int') {
      if (t.bool) return raw === 0n ? 'false' : 'true';
      const v = t.signed ? BigInt.asIntN(bits, raw) : raw;
      if (t.name === 'char' && t.size === 1 && PRINTABLE(Number(raw))) return charLiteral(Number(raw));
      if (!t.signed && /addr/i.test(field)) return `0x${v.toString(16).padStart(Math.ceil(bits / 4), '0')}`;
      return v.toString();
    }
    if (t.kind === 'enum' || t.kind === 'enum64') {
      const v = t.signed ? BigInt.asIntN(bits, raw) : raw;
      // Enumerators are stored sign- or zero-extended; compare in the member's width.
      const e = t.values.find((x) => BigInt.asUintN(bits, x.value) === BigInt.asUintN(bits, v));
      return e ? e.name : v.toString();
    }
    throw new BtfError(this.btf.file, `type [${t.id}] ${t.kind} is not a scalar`);
  }

  private float(off: number, size: number): string {
    this.check(off, size);
    let v: number;
    if (size === 4) v = this.dv.getFloat32(off, true);
    else if (size === 8) v = this.dv.getFloat64(off, true);
    else return `<${size}-byte float 0x${this.unsigned(off, size).toString(16)}>`;
    return Number.isInteger(v) ? v.toFixed(1) : String(v);
  }

  private array(elem: number, n: number, off: number, depth: number): string {
    const et = this.btf.type(resolveType(this.btf, elem));
    if (et.kind === 'int' && et.size === 1 && (et.char || /^(signed |unsigned )?char$/.test(et.name))) {
      const s = this.bytes.subarray(off, off + n);
      const nul = s.indexOf(0);
      const text = nul < 0 ? s : s.subarray(0, nul);
      if (text.every(PRINTABLE) && (nul < 0 || s.subarray(nul).every((b) => b === 0))) {
        return JSON.stringify(String.fromCharCode(...text));
      }
    }
    if (n === 0) return '{}';
    const esize = sizeOf(this.btf, elem);
    const shown = Math.min(n, this.maxElements);
    const parts: string[] = [];
    for (let i = 0; i < shown; i++) parts.push(this.value(elem, off + i * esize, '', depth + 1));
    if (shown < n) parts.push('...');
    return `{ ${parts.join(', ')} }`;
  }

  private composite(id: number, off: number, depth: number): string {
    const parts = this.members(id, off, depth);
    return parts.length === 0 ? '{}' : `{ ${parts.join(', ')} }`;
  }

  /** `.name = value` for each member; anonymous struct/union members contribute theirs inline. */
  private members(id: number, off: number, depth: number): string[] {
    if (depth > MAX_RESOLVE_DEPTH) throw new BtfError(this.btf.file, `type [${id}] is nested too deeply to format`);
    const parts: string[] = [];
    for (const m of fieldsOf(this.btf, id)) {
      this.tick();
      const mt = this.btf.type(resolveType(this.btf, m.type));
      if (m.name === '' && (mt.kind === 'struct' || mt.kind === 'union') && m.bitSize === 0) {
        parts.push(...this.members(mt.id, off + m.bitOffset / 8, depth + 1));
        continue;
      }
      const label = m.name === '' ? '' : `.${m.name} = `;
      if (m.bitSize > 0) {
        parts.push(label + this.bitfield(mt, off, m.bitOffset, m.bitSize, m.name));
      } else {
        parts.push(label + this.value(m.type, off + m.bitOffset / 8, m.name, depth + 1));
      }
    }
    return parts;
  }

  private bitfield(t: BtfType, off: number, bitOffset: number, bitSize: number, field: string): string {
    const first = off + Math.floor(bitOffset / 8);
    const last = off + Math.floor((bitOffset + bitSize - 1) / 8);
    const raw = (this.unsigned(first, last - first + 1) >> BigInt(bitOffset % 8)) & ((1n << BigInt(bitSize)) - 1n);
    return this.scalar(t, raw, bitSize, field);
  }
}

function charLiteral(c: number): string {
  const ch = String.fromCharCode(c);
  return ch === "'" || ch === '\\' ? `'\\${ch}'` : `'${ch}'`;
}
