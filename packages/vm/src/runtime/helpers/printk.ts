// The format language of bpf_trace_printk and bpf_snprintf (kernel/bpf/helpers.c,
// bpf_bprintf_prepare): %d %i %u %x %X %c %s %p with l/ll/h/hh length modifiers, %pI4 %pI6
// %pi4 %pi6 %pM %pK %px %ps, %%; at most three arguments for trace_printk.

import type { Machine } from '../../engine/machine.js';
import { EINVAL } from './common.js';

const dec = new TextDecoder();

function cstr(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return dec.decode(end >= 0 ? bytes.subarray(0, end) : bytes);
}

/** Formats; returns -EINVAL where the kernel refuses the format. */
export function formatPrintk(m: Machine, _id: number, fmtBytes: Uint8Array, args: bigint[]): string | number {
  if (fmtBytes.length === 0 || fmtBytes[fmtBytes.length - 1] !== 0) {
    // The kernel requires the format to be NUL-terminated within fmt_size.
    if (fmtBytes.indexOf(0) < 0) return EINVAL;
  }
  const fmt = cstr(fmtBytes);
  let out = '';
  let argi = 0;
  const next = (): bigint | undefined => (argi < args.length ? args[argi++] : undefined);
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    i++;
    if (fmt[i] === '%') {
      out += '%';
      continue;
    }
    // Flags, width, precision.
    let spec = '';
    while (i < fmt.length && /[-+ #0]/.test(fmt[i]!)) spec += fmt[i++];
    let width = '';
    while (i < fmt.length && /[0-9]/.test(fmt[i]!)) width += fmt[i++];
    let len = '';
    while (i < fmt.length && /[lhz]/.test(fmt[i]!)) len += fmt[i++];
    const conv = fmt[i];
    if (conv === undefined) return EINVAL;
    const v = next();
    if (v === undefined) return EINVAL;
    const bits = len === 'll' || len === 'l' || len === 'z' ? 64 : len === 'h' ? 16 : len === 'hh' ? 8 : 32;
    const asU = BigInt.asUintN(bits, v);
    const asS = BigInt.asIntN(bits, v);
    let s: string;
    switch (conv) {
      case 'd':
      case 'i':
        s = asS.toString();
        break;
      case 'u':
        s = asU.toString();
        break;
      case 'x':
        s = asU.toString(16);
        break;
      case 'X':
        s = asU.toString(16).toUpperCase();
        break;
      case 'c':
        s = String.fromCharCode(Number(v & 0xffn));
        break;
      case 's': {
        const lo = Number(v & 0xffffffffn) | 0;
        const hi = Number(v >> 32n) | 0;
        try {
          const r = m.mem.regionOf(hi);
          const avail = r ? Math.max(0, r.hi - ((lo >>> 0) - 0)) : 0;
          s = cstr(m.readBytes(m.pc, lo, hi, Math.min(avail, 1024), 'string argument of %s'));
        } catch {
          s = '(fault)';
        }
        break;
      }
      case 'p': {
        const ext = fmt.slice(i + 1, i + 3);
        if (/^[iI][46]/.test(ext)) {
          i += 2;
          const lo = Number(v & 0xffffffffn) | 0;
          const hi = Number(v >> 32n) | 0;
          const n = ext[1] === '4' ? 4 : 16;
          const b = m.readBytes(m.pc, lo, hi, n, `address argument of %p${ext}`);
          s = n === 4 ? [...b].join('.') : [...Array(8)].map((_, k) => ((b[2 * k]! << 8) | b[2 * k + 1]!).toString(16)).join(':');
        } else if (/^[Mm]/.test(fmt[i + 1] ?? '')) {
          i += 1;
          const lo = Number(v & 0xffffffffn) | 0;
          const hi = Number(v >> 32n) | 0;
          s = [...m.readBytes(m.pc, lo, hi, 6, 'MAC argument of %pM')].map((x) => x.toString(16).padStart(2, '0')).join(':');
        } else {
          if (/^[Kxs]/.test(fmt[i + 1] ?? '')) i += 1;
          s = '0x' + BigInt.asUintN(64, v).toString(16);
        }
        break;
      }
      default:
        return EINVAL;
    }
    const w = Number(width || '0');
    if (s.length < w) s = spec.includes('-') ? s.padEnd(w) : s.padStart(w, spec.includes('0') && conv !== 's' ? '0' : ' ');
    out += s;
  }
  return out;
}
