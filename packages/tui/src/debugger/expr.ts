// The C-like expressions of breakpoint conditions and watchpoints: `r1 == 6 && *(u8 *)(pkt + 23) == 17`.
// Values are 64-bit; a register keeps what it points to, so `r10 - 8` and `pkt + 23` are addresses
// that a load `*(u32 *)(…)` reads from the step's stack frames or packet.

import { FRAME_SIZE, RewindError } from '@rewind/vm';
import type { StepState } from './trace.js';

export class ExprError extends RewindError {
  override name = 'ExprError';
}

/** A pointer: which region (the kind, and its id when known) and the offset from its origin. */
export interface Pointer {
  kind: 'stack' | 'packet' | 'ctx' | 'map_value' | string;
  /** The region id (stack frames are 0..7 by depth); -1 when no register says which. */
  region: number;
  /** Offset from the region's origin (r10 for a stack frame, data for the packet), as Provenance writes it. */
  offset: number;
  /** The raw region offset of the origin (trace write targets use raw offsets); -1 when unknown. */
  origin: number;
}

export interface Value {
  v: bigint;
  signed: boolean;
  ptr?: Pointer;
}

const M64 = (1n << 64n) - 1n;

type Node =
  | { t: 'num'; v: bigint }
  | { t: 'reg'; reg: number; w32: boolean }
  | { t: 'name'; name: 'pkt' | 'data' | 'data_end' | 'ctx' | 'stack' | 'fp' }
  | { t: 'un'; op: string; e: Node }
  | { t: 'bin'; op: string; a: Node; b: Node }
  | { t: 'cast'; size: number; signed: boolean; e: Node }
  | { t: 'load'; size: number; signed: boolean; addr: Node };

const TYPES: Record<string, { size: number; signed: boolean }> = {};
for (const [n, size] of [[8, 1], [16, 2], [32, 4], [64, 8]] as const) {
  for (const name of [`u${n}`, `__u${n}`, `uint${n}_t`, `__be${n}`, `__le${n}`]) TYPES[name] = { size, signed: false };
  for (const name of [`s${n}`, `__s${n}`, `int${n}_t`]) TYPES[name] = { size, signed: true };
}
TYPES.char = { size: 1, signed: true };
TYPES.int = { size: 4, signed: true };
TYPES.long = { size: 8, signed: true };

// Binding powers of C's binary operators, loosest first.
const BINARY: Record<string, number> = {
  '||': 1, '&&': 2, '|': 3, '^': 4, '&': 5, '==': 6, '!=': 6, '<': 7, '<=': 7, '>': 7, '>=': 7, '<<': 8, '>>': 8, '+': 9, '-': 9, '*': 10, '/': 10, '%': 10,
};

const TOKEN = /\s*(0x[0-9a-fA-F]+|\d+|[A-Za-z_][A-Za-z_0-9]*|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!~()<>])/y;

function tokenize(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (!m) throw new ExprError(`'${text}': unexpected '${text.slice(at).trim()[0]}' at column ${at + 1}`);
    out.push(m[1]!);
    at = TOKEN.lastIndex;
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly toks: string[], private readonly text: string) {}

  parse(): Node {
    if (this.toks.length === 0) throw new ExprError('an empty expression');
    const e = this.binary(0);
    if (this.i < this.toks.length) throw new ExprError(`'${this.text}': unexpected '${this.toks[this.i]}'`);
    return e;
  }

  private peek(k = 0): string | undefined {
    return this.toks[this.i + k];
  }

  private take(want?: string): string {
    const t = this.toks[this.i++];
    if (t === undefined) throw new ExprError(`'${this.text}': the expression ends early${want ? ` (expected '${want}')` : ''}`);
    if (want !== undefined && t !== want) throw new ExprError(`'${this.text}': expected '${want}', found '${t}'`);
    return t;
  }

  private binary(min: number): Node {
    let a = this.unary();
    for (;;) {
      const op = this.peek();
      const bp = op === undefined ? undefined : BINARY[op];
      if (bp === undefined || bp <= min) return a;
      this.i++;
      a = { t: 'bin', op: op!, a, b: this.binary(bp) };
    }
  }

  /** `(type)` or `(type *)` at the cursor: the type, without consuming. */
  private castAhead(): { size: number; signed: boolean; pointer: boolean; len: number } | undefined {
    if (this.peek() !== '(') return undefined;
    let k = 1;
    if (this.peek(k) === 'unsigned' || this.peek(k) === 'signed') k++;
    const ty = TYPES[this.peek(k) ?? ''];
    if (!ty) return undefined;
    k++;
    let pointer = false;
    if (this.peek(k) === '*') {
      pointer = true;
      k++;
    }
    if (this.peek(k) !== ')') return undefined;
    return { ...ty, signed: this.peek(1) === 'unsigned' ? false : ty.signed, pointer, len: k + 1 };
  }

  private unary(): Node {
    const t = this.peek();
    if (t === '*') {
      this.i++;
      const cast = this.castAhead();
      if (!cast?.pointer) throw new ExprError(`'${this.text}': say how many bytes to load, e.g. *(u32 *)(r10 - 8)`);
      this.i += cast.len;
      return { t: 'load', size: cast.size, signed: cast.signed, addr: this.unary() };
    }
    if (t === '-' || t === '!' || t === '~' || t === '+') {
      this.i++;
      return { t: 'un', op: t, e: this.unary() };
    }
    const cast = this.castAhead();
    if (cast) {
      if (cast.pointer) throw new ExprError(`'${this.text}': a pointer cast needs a load in front: *(u${cast.size * 8} *)(…)`);
      this.i += cast.len;
      return { t: 'cast', size: cast.size, signed: cast.signed, e: this.unary() };
    }
    return this.primary();
  }

  private primary(): Node {
    const t = this.take();
    if (t === '(') {
      const e = this.binary(0);
      this.take(')');
      return e;
    }
    if (/^(0x[0-9a-fA-F]+|\d+)$/.test(t)) return { t: 'num', v: BigInt(t) };
    const reg = /^([rw])(\d+)$/.exec(t);
    if (reg && Number(reg[2]) <= 10) return { t: 'reg', reg: Number(reg[2]), w32: reg[1] === 'w' };
    if (t === 'pkt' || t === 'data' || t === 'data_end' || t === 'ctx' || t === 'stack' || t === 'fp') return { t: 'name', name: t };
    throw new ExprError(`'${this.text}': unknown name '${t}' (registers r0..r10, w0..w10, pkt, data_end, ctx, stack)`);
  }
}

/** A parsed expression, evaluated against a step's state. */
export class Expr {
  private constructor(readonly text: string, private readonly root: Node) {}

  static parse(text: string): Expr {
    return new Expr(text.trim(), new Parser(tokenize(text), text.trim()).parse());
  }

  /** The value at a step. Throws ExprError when a load reads what the state does not hold. */
  eval(s: StepState): Value {
    return evaluate(this.root, s, this.text);
  }

  /** True when the value is non-zero, as C's `if`. */
  test(s: StepState): boolean {
    return this.eval(s).v !== 0n;
  }

  /** For `watch *(u32 *)(addr)`: the load's address and size, when the expression is just a load. */
  load(s: StepState): { ptr: Pointer; size: number } | undefined {
    if (this.root.t !== 'load') return undefined;
    const a = evaluate(this.root.addr, s, this.text);
    if (!a.ptr) throw new ExprError(`'${this.text}': the address is a number, not a pointer into the stack, packet or a map value`);
    return { ptr: a.ptr, size: this.root.size };
  }

  /** A register, when the expression is just one. */
  get register(): number | undefined {
    return this.root.t === 'reg' && !this.root.w32 ? this.root.reg : undefined;
  }
}

function truncate(v: bigint, size: number, signed: boolean): bigint {
  const bits = BigInt(size * 8);
  const u = v & ((1n << bits) - 1n);
  return signed && u >> (bits - 1n) ? (u - (1n << bits)) & M64 : u;
}

function signedOf(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

/** The region id and origin of a kind of region, read off a register that points into it (-1: none does). */
export function regionOf(s: StepState, kind: string): { region: number; origin: number } {
  const i = s.prov.findIndex((p) => p?.kind === kind);
  if (i < 0) return { region: -1, origin: -1 };
  const p = s.prov[i]!;
  return { region: p.region, origin: Number(s.regs[i]! & 0xffffffffn) - p.offset };
}

function evaluate(n: Node, s: StepState, text: string): Value {
  switch (n.t) {
    case 'num':
      return { v: n.v & M64, signed: false };
    case 'reg': {
      const v = s.regs[n.reg]!;
      if (n.w32) return { v: v & 0xffffffffn, signed: false };
      const p = s.prov[n.reg];
      return { v, signed: false, ptr: p ? { kind: p.kind, region: p.region, offset: p.offset, origin: Number(v & 0xffffffffn) - p.offset } : undefined };
    }
    case 'name': {
      if (n.name === 'pkt' || n.name === 'data') {
        if (!s.packet) throw new ExprError(`'${text}': this run has no packet`);
        return { v: 0n, signed: false, ptr: { kind: 'packet', ...regionOf(s, 'packet'), offset: 0 } };
      }
      if (n.name === 'data_end') {
        if (!s.packet) throw new ExprError(`'${text}': this run has no packet`);
        return { v: BigInt(s.packet.bytes.length), signed: false, ptr: { kind: 'packet', ...regionOf(s, 'packet'), offset: s.packet.bytes.length } };
      }
      if (n.name === 'ctx') {
        return { v: 0n, signed: false, ptr: { kind: 'ctx', ...regionOf(s, 'ctx'), offset: 0 } };
      }
      // stack / fp: the frame pointer of the current frame.
      const p = s.prov[10];
      return { v: s.regs[10]!, signed: false, ptr: { kind: 'stack', region: p?.region ?? s.depth, offset: 0, origin: FRAME_SIZE } };
    }
    case 'un': {
      const x = evaluate(n.e, s, text);
      if (n.op === '+') return x;
      if (n.op === '-') return { v: -x.v & M64, signed: true };
      if (n.op === '~') return { v: ~x.v & M64, signed: x.signed };
      return { v: x.v === 0n ? 1n : 0n, signed: false };
    }
    case 'cast': {
      const x = evaluate(n.e, s, text);
      return { v: truncate(x.v, n.size, n.signed), signed: n.signed };
    }
    case 'load': {
      const a = evaluate(n.addr, s, text);
      if (!a.ptr) throw new ExprError(`'${text}': the address is a number, not a pointer into the stack or the packet`);
      const bytes = readBytes(s, a.ptr, n.size, text);
      let v = 0n;
      for (let i = n.size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
      return { v: truncate(v, n.size, n.signed), signed: n.signed };
    }
    case 'bin': {
      if (n.op === '&&') return { v: evaluate(n.a, s, text).v !== 0n && evaluate(n.b, s, text).v !== 0n ? 1n : 0n, signed: false };
      if (n.op === '||') return { v: evaluate(n.a, s, text).v !== 0n || evaluate(n.b, s, text).v !== 0n ? 1n : 0n, signed: false };
      const a = evaluate(n.a, s, text);
      const b = evaluate(n.b, s, text);
      const signed = a.signed && b.signed;
      const x = signed ? signedOf(a.v) : a.v;
      const y = signed ? signedOf(b.v) : b.v;
      const bool = (c: boolean): Value => ({ v: c ? 1n : 0n, signed: false });
      switch (n.op) {
        case '==': return bool(x === y);
        case '!=': return bool(x !== y);
        case '<': return bool(x < y);
        case '<=': return bool(x <= y);
        case '>': return bool(x > y);
        case '>=': return bool(x >= y);
      }
      // Pointer arithmetic keeps the region: `r10 - 8`, `pkt + 23`.
      const ptr = n.op === '+' ? (a.ptr && !b.ptr ? { ...a.ptr, offset: a.ptr.offset + Number(signedOf(b.v)) } : b.ptr && !a.ptr ? { ...b.ptr, offset: b.ptr.offset + Number(signedOf(a.v)) } : undefined)
        : n.op === '-' && a.ptr && !b.ptr ? { ...a.ptr, offset: a.ptr.offset - Number(signedOf(b.v)) } : undefined;
      let v: bigint;
      switch (n.op) {
        case '+': v = a.v + b.v; break;
        case '-': v = a.v - b.v; break;
        case '*': v = a.v * b.v; break;
        case '/': if (b.v === 0n) throw new ExprError(`'${text}': division by zero`); v = signed ? x / y : a.v / b.v; break;
        case '%': if (b.v === 0n) throw new ExprError(`'${text}': division by zero`); v = signed ? x % y : a.v % b.v; break;
        case '&': v = a.v & b.v; break;
        case '|': v = a.v | b.v; break;
        case '^': v = a.v ^ b.v; break;
        case '<<': v = a.v << (b.v & 63n); break;
        default: v = signed ? x >> (y & 63n) : a.v >> (b.v & 63n); break;
      }
      return { v: v & M64, signed, ptr };
    }
  }
}

/** The bytes a pointer designates at a step: stack frames and the packet are in the state. */
export function readBytes(s: StepState, p: Pointer, size: number, text = 'the address'): Uint8Array {
  if (p.kind === 'packet') {
    if (!s.packet) throw new ExprError(`'${text}': this run has no packet`);
    if (p.offset < 0 || p.offset + size > s.packet.bytes.length) throw new ExprError(`'${text}': pkt+${p.offset} (${size} bytes) is outside the ${s.packet.bytes.length}-byte packet`);
    return s.packet.bytes.subarray(p.offset, p.offset + size);
  }
  if (p.kind === 'stack') {
    const frame = s.frames.find((f) => f.depth === p.region) ?? (p.region < 0 ? s.frames[s.frames.length - 1] : undefined);
    if (!frame) throw new ExprError(`'${text}': stack frame ${p.region} is not live at step ${s.step}`);
    const at = frame.bytes.length + p.offset;
    if (at < 0 || at + size > frame.bytes.length) throw new ExprError(`'${text}': stack${p.offset} (${size} bytes) is outside the 512-byte frame`);
    return frame.bytes.subarray(at, at + size);
  }
  throw new ExprError(`'${text}': ${p.kind} memory is not in the step's state (only the stack and the packet are)`);
}
