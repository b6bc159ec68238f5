// Argument handling shared by the helpers.

import { Fault } from '../../errors.js';
import type { Machine } from '../../engine/machine.js';
import type { BpfMap } from '../../maps/map.js';
import type { ProgType } from '../../program.js';
import type { Context } from '../contexts.js';
import type { HelperEnv } from './index.js';
import { HELPER_NAMES } from '../../helpers/ids.js';

// Negative errno values, include/uapi/asm-generic/errno-base.h and errno.h, and the kernel's ENOTSUPP.
export const ENOENT = -2;
export const E2BIG = -7;
export const EAGAIN = -11;
export const ENOMEM = -12;
export const EACCES = -13;
export const EFAULT = -14;
export const EBUSY = -16;
export const ENODEV = -19;
export const EINVAL = -22;
export const ENOSPC = -28;
export const ERANGE = -34;
export const EPROTO = -71;
export const EOPNOTSUPP = -95;
export const EAFNOSUPPORT = -97;
export const EALREADY = -114;
export const ENOTSUPP = -524;

/** A fault raised by a helper, naming it and the current instruction. */
export function helperFault(m: Machine, id: number, what: string): Fault {
  return new Fault(`fault at insn ${m.pc} (${m.describeInsn(m.pc)}): ${HELPER_NAMES[id]}: ${what}`, 'helper', m.pc);
}

/** The map argument i (a pointer loaded by `lddw rX, map`). */
export function mapArg(env: HelperEnv, m: Machine, id: number, i: number): BpfMap {
  return env.mapSpace.maps[mapIndexArg(env, m, id, i)]!;
}

/** The index in the session's maps of the map argument i. */
export function mapIndexArg(env: HelperEnv, m: Machine, id: number, i: number): number {
  const index = env.mapSpace.mapIndexOfPointer(m.argLo(i), m.argHi(i));
  if (index < 0) throw helperFault(m, id, `argument ${i} (r${i}) is not a map (${m.mem.describePointer(m.argLo(i), m.argHi(i)) ?? 'a scalar'})`);
  return index;
}

/**
 * Helpers whose prototype has pkt_access (map lookup, update, delete, push, lookup_percpu,
 * csum_diff): only their memory arguments may point into the packet.
 */
const PKT_ACCESS = new Uint8Array(HELPER_NAMES.length);
for (const id of [1, 2, 3, 28, 87, 195]) PKT_ACCESS[id] = 1;

function checkPacketArg(m: Machine, id: number, i: number): void {
  if (PKT_ACCESS[id] || m.mem.regionOf(m.argHi(i))?.kind !== 'packet') return;
  throw helperFault(m, id, `argument ${i} (r${i}) points into the packet (${m.mem.describePointer(m.argLo(i), m.argHi(i))}): helper access to the packet is not allowed (the verifier refuses this)`);
}

/** `size` bytes of memory at the pointer in argument i. */
export function memArg(m: Machine, id: number, i: number, size: number, what: string): Uint8Array {
  checkPacketArg(m, id, i);
  return m.readBytes(m.pc, m.argLo(i), m.argHi(i), size, `${HELPER_NAMES[id]} reads ${what} from r${i}`);
}

/**
 * Like memArg, for memory the helper is done with before it returns (map keys and values the
 * map copies): the bytes may be in a buffer the next such read reuses. `second` keeps a second
 * argument of the same size apart from the first.
 */
export function memArgTransient(m: Machine, id: number, i: number, size: number, what: string, second = false): Uint8Array {
  checkPacketArg(m, id, i);
  return m.peekBytes(m.argLo(i), m.argHi(i), size, second) ?? m.readBytes(m.pc, m.argLo(i), m.argHi(i), size, `${HELPER_NAMES[id]} reads ${what} from r${i}`);
}

/** Writes bytes to the memory at the pointer in argument i. */
export function writeArg(m: Machine, id: number, i: number, bytes: Uint8Array, what: string): void {
  checkPacketArg(m, id, i);
  m.writeBytes(m.pc, m.argLo(i), m.argHi(i), bytes, `${HELPER_NAMES[id]} writes ${what} to r${i}`);
}

/** Argument i as an unsigned 32-bit number. */
export function u32Arg(m: Machine, i: number): number {
  return m.argLo(i) >>> 0;
}

/** Argument i as a number, for sizes and offsets (the low 32 bits, signed when `signed`). */
export function intArg(m: Machine, i: number, signed = false): number {
  return signed ? m.argLo(i) | 0 : m.argLo(i) >>> 0;
}

/** Argument i as a 64-bit unsigned value. */
export function u64Arg(m: Machine, i: number): bigint {
  return m.arg(i);
}

/** A size argument (ARG_CONST_SIZE): the verifier bounds it, so more than 2^31 cannot reach a helper. */
export function sizeArg(m: Machine, id: number, i: number, allowZero: boolean): number {
  if (m.argHi(i) !== 0 || m.argLo(i) < 0) throw helperFault(m, id, `size argument r${i} = ${m.arg(i)} is out of range (the verifier refuses it)`);
  const n = m.argLo(i);
  if (n === 0 && !allowZero) throw helperFault(m, id, `size argument r${i} is 0 (the verifier refuses a zero size here)`);
  return n;
}

/** The program type of the running program. */
export function progType(env: HelperEnv): ProgType | undefined {
  return env.run.program?.program.type;
}

/** Faults unless the running program's type has this helper (the kernel's get_func_proto per type). */
export function requireType(env: HelperEnv, m: Machine, id: number, types: readonly ProgType[]): ProgType {
  const type = progType(env);
  if (!type || !types.includes(type)) throw helperFault(m, id, `not available to ${type ?? 'these'} programs (the verifier refuses the call; it is for ${types.join(', ')})`);
  return type;
}

/** Argument i must be the context pointer (ARG_PTR_TO_CTX); returns the context. */
export function ctxArg(env: HelperEnv, m: Machine, id: number, i: number): Context {
  const type = progType(env);
  const ctx = type ? env.context(type) : undefined;
  const p = ctx?.pointer;
  if (!ctx || !p || m.argLo(i) !== p.lo || m.argHi(i) !== p.hi) {
    throw helperFault(m, id, `argument ${i} (r${i}) must be the context pointer, it is ${m.mem.describePointer(m.argLo(i), m.argHi(i)) ?? 'a scalar'} (the verifier refuses this)`);
  }
  return ctx;
}

/** Sets a context field a helper changes (skb->protocol, skb->hash...) and tells the recorder. */
export function setCtxField(m: Machine, ctx: Context, name: string, value: number): void {
  ctx.setField(name, value);
  const f = ctx.fields.find((x) => x.name === name)!;
  m.onWrite?.(ctx.region, f.offset, ctx.bytes.slice(f.offset, f.offset + f.size));
}

/** Tells the recorder which packet bytes a helper changed (buffer offsets [from, to)). */
export function packetWritten(env: HelperEnv, m: Machine, from: number, to: number): void {
  if (!m.onWrite || to <= from) return;
  const p = env.packet;
  m.onWrite(p.region, from, p.buffer().slice(from, to));
}

/** A NUL-terminated string of at most `max` bytes at the pointer in argument i (without the NUL). */
export function cStringArg(m: Machine, id: number, i: number, max: number, what: string): Uint8Array {
  checkPacketArg(m, id, i);
  const lo = m.argLo(i);
  const hi = m.argHi(i);
  const out: number[] = [];
  for (let k = 0; k < max; k++) {
    const b = m.readBytes(m.pc, (lo + k) | 0, hi, 1, `${HELPER_NAMES[id]} reads ${what} from r${i}`)[0]!;
    if (b === 0) break;
    out.push(b);
  }
  return Uint8Array.from(out);
}
