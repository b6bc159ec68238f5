// The format language of bpf_trace_printk and bpf_snprintf: the formats
// bpf_bprintf_prepare() (kernel/bpf/helpers.c) accepts, printed as the kernel's vsnprintf
// (lib/vsprintf.c) prints them. Accepted: %d %i %u %x %X with the l and ll modifiers, %c, %s
// (%ks, %us), %p, %pK, %px, %ps, %pS, %pB, %pI4, %pi4, %pI6, %pi6 and %%, with the flags
// `0 + - space` and a width; anything else (precision, h, #, %pM, non-printable characters,
// more conversions than arguments) is -EINVAL, and arguments that overflow the 512-byte
// binary argument buffer are -ENOSPC.
//
// Rewind's %p prints a deterministic 32-bit hash of the pointer (the kernel hashes with a key
// chosen at boot), and %ps/%pS/%pB print the address as the kernel does for an address that
// is not a kernel symbol.

import { Fault } from '../../errors.js';
import type { Machine } from '../../engine/machine.js';
import { EINVAL, ENOSPC } from './common.js';

/** MAX_BPRINTF_BIN_ARGS: the binary argument buffer of bpf_bprintf_prepare(). */
const MAX_BPRINTF_BIN_ARGS = 512;

const isPrint = (c: number) => c >= 0x20 && c <= 0x7e;
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isPunct = (c: number) => isPrint(c) && c !== 0x20 && !/[0-9A-Za-z]/.test(String.fromCharCode(c));
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

const enc = (s: string): number[] => {
  const out = new Array<number>(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
};

const decoder = new TextDecoder();

interface Spec {
  left: boolean;
  plus: boolean;
  space: boolean;
  zero: boolean;
  width: number;
}

function pad(body: number[], spec: Spec): number[] {
  const n = spec.width - body.length;
  if (n <= 0) return body;
  const fill = new Array<number>(n).fill(0x20);
  return spec.left ? [...body, ...fill] : [...fill, ...body];
}

/** lib/vsprintf.c number() for bases 10 and 16, without precision. */
function number(value: bigint, signed: boolean, base: 10 | 16, upper: boolean, spec: Spec): number[] {
  let sign = '';
  let v = value;
  if (signed) {
    if (v < 0n) {
      sign = '-';
      v = -v;
    } else if (spec.plus) sign = '+';
    else if (spec.space) sign = ' ';
  }
  let digits = v.toString(base);
  if (upper) digits = digits.toUpperCase();
  let width = spec.width - sign.length - digits.length;
  let out = '';
  if (!spec.left && !spec.zero) while (width-- > 0) out += ' ';
  out += sign;
  if (!spec.left && spec.zero) while (width-- > 0) out += '0';
  out += digits;
  while (width-- > 0) out += ' ';
  return enc(out);
}

/** A deterministic stand-in for the kernel's hashed %p (ptr_to_id(): 32 bits, printed as 16 hex digits). */
function pointerId(v: bigint): string {
  let z = Number(v & 0xffffffffn) ^ Number((v >> 32n) & 0xffffffffn);
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return ((z ^ (z >>> 16)) >>> 0).toString(16).padStart(16, '0');
}

/** What a format produced: the bytes, as vsnprintf would write them without a size limit. */
export interface Printed {
  bytes: Uint8Array;
  text: string;
}

/**
 * Formats `fmt` (the bytes before its NUL) with `args`. Strings and addresses are read through
 * the machine; one that cannot be read prints as the kernel prints a failed copy (empty, or a
 * zero address). Returns a negative errno where bpf_bprintf_prepare() refuses the format.
 */
export function bprintf(m: Machine, fmt: Uint8Array, args: readonly bigint[]): Printed | number {
  const out: number[] = [];
  let used = 0;
  let spec = 0;
  const at = (i: number) => (i < fmt.length ? fmt[i]! : 0);
  const room = () => MAX_BPRINTF_BIN_ARGS - used;
  /** A fixed-size argument in the binary buffer: 4-byte aligned. */
  const fixed = (size: number): boolean => {
    used = (used + 3) & ~3;
    if (room() < size) return false;
    used += size;
    return true;
  };

  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if ((!isPrint(c) && !isSpace(c)) || c > 0x7f) return EINVAL;
    if (c !== 0x25) {
      out.push(c);
      continue;
    }
    if (at(i + 1) === 0x25) {
      out.push(0x25);
      i++;
      continue;
    }
    if (spec >= args.length) return EINVAL;
    const arg = args[spec]!;
    i++;
    const s: Spec = { left: false, plus: false, space: false, zero: false, width: 0 };
    for (;;) {
      const f = at(i);
      if (f === 0x30) s.zero = true;
      else if (f === 0x2b) s.plus = true;
      else if (f === 0x2d) s.left = true;
      else if (f === 0x20) s.space = true;
      else break;
      i++;
    }
    if (s.left) s.zero = false;
    if (at(i) >= 0x31 && at(i) <= 0x39) {
      let w = 0;
      while (isDigit(at(i))) w = w * 10 + (at(i++) - 0x30);
      s.width = w;
    }
    const conv = at(i);
    if (conv === 0x70 /* p */) {
      const next = at(i + 1);
      if (next === 0 || isSpace(next) || isPunct(next)) {
        if (!fixed(8)) return ENOSPC;
        out.push(...pad(enc(pointerId(arg)), s));
      } else if ((next === 0x6b || next === 0x75) && at(i + 2) === 0x73 /* %ks %us */) {
        i += 2;
        const r = stringArg(m, arg, at(i + 1), room());
        if (typeof r === 'number') return r;
        used += r.consumed;
        out.push(...pad(r.bytes, s));
      } else if (next === 0x4b || next === 0x78 || next === 0x73 || next === 0x53 /* K x s S */) {
        i++;
        if (!fixed(8)) return ENOSPC;
        const body = next === 0x78 ? BigInt.asUintN(64, arg).toString(16).padStart(16, '0') : next === 0x4b ? pointerId(arg) : '0x' + BigInt.asUintN(64, arg).toString(16);
        out.push(...pad(enc(body), s));
      } else if (next === 0x42 /* B */) {
        i++;
        const body = enc('0x' + BigInt.asUintN(64, arg).toString(16));
        used += body.length + 1;
        out.push(...pad(body, s));
      } else {
        const kind = at(i + 2);
        if ((next !== 0x69 && next !== 0x49) || (kind !== 0x34 && kind !== 0x36)) return EINVAL;
        i += 2;
        const n = kind === 0x34 ? 4 : 16;
        if (room() < n) return ENOSPC;
        const addr = readOrZero(m, arg, n);
        // The kernel formats the address into the buffer first; the width does not apply to it.
        const body = enc(n === 4 ? ipv4(addr, next === 0x69) : ipv6(addr, next === 0x49));
        used += body.length + 1;
        out.push(...body);
        // bstr_printf() skips the alphanumerics after %p (so %pI6c prints the full form).
        while (/[0-9A-Za-z]/.test(String.fromCharCode(at(i + 1)))) i++;
      }
      spec++;
      continue;
    }
    if (conv === 0x73 /* s */) {
      const r = stringArg(m, arg, at(i + 1), room());
      if (typeof r === 'number') return r;
      used += r.consumed;
      out.push(...pad(r.bytes, s));
      spec++;
      continue;
    }
    if (conv === 0x63 /* c */) {
      if (room() === 0) return ENOSPC;
      used += 1;
      out.push(...pad([Number(arg & 0xffn)], s));
      spec++;
      continue;
    }
    let long = false;
    if (at(i) === 0x6c) {
      long = true;
      i++;
    }
    if (at(i) === 0x6c) i++;
    const k = at(i);
    if (k !== 0x69 && k !== 0x64 && k !== 0x75 && k !== 0x78 && k !== 0x58) return EINVAL;
    if (!fixed(long ? 8 : 4)) return ENOSPC;
    const bits = long ? 64 : 32;
    const signed = k === 0x69 || k === 0x64;
    const v = signed ? BigInt.asIntN(bits, arg) : BigInt.asUintN(bits, arg);
    out.push(...number(v, signed, k === 0x78 || k === 0x58 ? 16 : 10, k === 0x58, s));
    spec++;
  }
  const bytes = Uint8Array.from(out);
  return { bytes, text: decoder.decode(bytes) };
}

function readOrZero(m: Machine, v: bigint, n: number): Uint8Array {
  try {
    return m.readBytes(m.pc, Number(v & 0xffffffffn) | 0, Number((v >> 32n) & 0xffffffffn) | 0, n, 'address argument');
  } catch (e) {
    if (e instanceof Fault) return new Uint8Array(n);
    throw e;
  }
}

/**
 * A %s argument: strncpy_from_kernel_nofault() into the `room` bytes left, truncated with a NUL
 * when longer; an unreadable string prints empty. The character after the conversion must end
 * it (NUL, space or punctuation).
 */
function stringArg(m: Machine, v: bigint, after: number, room: number): { bytes: number[]; consumed: number } | number {
  if (after !== 0 && !isSpace(after) && !isPunct(after)) return EINVAL;
  if (room === 0) return ENOSPC;
  const lo = Number(v & 0xffffffffn) | 0;
  const hi = Number((v >> 32n) & 0xffffffffn) | 0;
  const bytes: number[] = [];
  try {
    for (;;) {
      if (bytes.length === room - 1) return { bytes, consumed: room };
      const b = m.readBytes(m.pc, (lo + bytes.length) | 0, hi, 1, 'string argument')[0]!;
      if (b === 0) return { bytes, consumed: bytes.length + 1 };
      bytes.push(b);
    }
  } catch (e) {
    if (e instanceof Fault) return { bytes: [], consumed: 1 };
    throw e;
  }
}

/** %pI4 (1.2.3.4) and %pi4 (001.002.003.004). */
function ipv4(b: Uint8Array, padded: boolean): string {
  return [...b].map((x) => (padded ? String(x).padStart(3, '0') : String(x))).join('.');
}

/** %pI6 (8 groups of 4 hex digits with colons) and %pi6 (32 hex digits). */
function ipv6(b: Uint8Array, colons: boolean): string {
  const groups = [...Array(8)].map((_, k) => b[2 * k]!.toString(16).padStart(2, '0') + b[2 * k + 1]!.toString(16).padStart(2, '0'));
  return groups.join(colons ? ':' : '');
}
