// Argument handling shared by the helpers.

import { Fault } from '../../errors.js';
import type { Machine } from '../../engine/machine.js';
import type { BpfMap } from '../../maps/map.js';
import type { HelperEnv } from './index.js';
import { HELPER_NAMES } from '../../helpers/ids.js';

export const EINVAL = -22;
export const ENOENT = -2;
export const E2BIG = -7;
export const EFAULT = -14;
export const ENOSPC = -28;
export const EOPNOTSUPP = -95;
export const ENOTSUPP = -524;
export const EBUSY = -16;
export const ERANGE = -34;

/** A fault raised by a helper, naming it and the current instruction. */
export function helperFault(m: Machine, id: number, what: string): Fault {
  return new Fault(`fault at insn ${m.pc} (${m.describeInsn(m.pc)}): ${HELPER_NAMES[id]}: ${what}`, 'helper', m.pc);
}

/** The map argument i (a pointer loaded by `lddw rX, map`). */
export function mapArg(env: HelperEnv, m: Machine, id: number, i: number): BpfMap {
  const map = env.mapSpace.mapOfPointer(m.argLo(i), m.argHi(i));
  if (!map) throw helperFault(m, id, `argument ${i} (r${i}) is not a map (${m.mem.describePointer(m.argLo(i), m.argHi(i)) ?? 'a scalar'})`);
  return map;
}

/** `size` bytes of memory at the pointer in argument i. */
export function memArg(m: Machine, id: number, i: number, size: number, what: string): Uint8Array {
  return m.readBytes(m.pc, m.argLo(i), m.argHi(i), size, `${HELPER_NAMES[id]} reads ${what} from r${i}`);
}

/** Writes bytes to the memory at the pointer in argument i. */
export function writeArg(m: Machine, id: number, i: number, bytes: Uint8Array, what: string): void {
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
