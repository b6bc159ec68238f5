// bpf_strncmp and bpf_snprintf (kernel/bpf/helpers.c).

import type { HelperFn, Machine } from '../../engine/machine.js';
import type { HelperEnv } from './index.js';
import { EINVAL, cStringArg, helperFault, memArg, sizeArg, writeArg } from './common.js';
import { bprintf } from './printk.js';

/** MAX_BPRINTF_VARARGS: bpf_snprintf's arguments. */
const MAX_BPRINTF_VARARGS = 12;

/**
 * An ARG_PTR_TO_CONST_STR argument: a NUL-terminated string in a read-only map value (.rodata),
 * which is what the verifier accepts.
 */
function constStringArg(m: Machine, id: number, i: number, max: number): Uint8Array {
  const r = m.mem.regionOf(m.argHi(i));
  if (!r || r.kind !== 'map_value' || r.writable) {
    throw helperFault(m, id, `argument ${i} (r${i}) must point to a constant string in a read-only map such as .rodata, it is ${m.mem.describePointer(m.argLo(i), m.argHi(i)) ?? 'a scalar'} (the verifier refuses this)`);
  }
  return cStringArg(m, id, i, max, 'a constant string');
}

export function stringHelpers(_env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 182: long bpf_strncmp(const char *s1, u32 s1_sz, const char *s2)
  // strncmp() of lib/string.c: -1, 0 or 1.
  h.set(182, (m) => {
    const n = sizeArg(m, 182, 2, false);
    const s1 = memArg(m, 182, 1, n, 's1');
    const s2 = constStringArg(m, 182, 3, n);
    for (let k = 0; k < n; k++) {
      const c1 = s1[k]!;
      const c2 = k < s2.length ? s2[k]! : 0;
      if (c1 !== c2) return m.ret(c1 < c2 ? -1 : 1);
      if (c1 === 0) break;
    }
    m.ret(0);
  });

  // 165: long bpf_snprintf(char *str, u32 str_size, const char *fmt, u64 *data, u32 data_len)
  // Returns the length of the whole text plus one; writes at most str_size bytes, NUL included.
  h.set(165, (m) => {
    const size = sizeArg(m, 165, 2, true);
    const dataLen = sizeArg(m, 165, 5, true);
    if (dataLen % 8 !== 0 || dataLen > MAX_BPRINTF_VARARGS * 8 || (dataLen && m.argLo(4) === 0 && m.argHi(4) === 0)) return m.ret(EINVAL);
    const fmt = constStringArg(m, 165, 3, 0x10000);
    const raw = dataLen ? memArg(m, 165, 4, dataLen, 'the arguments') : new Uint8Array(0);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const args: bigint[] = [];
    for (let k = 0; k < dataLen; k += 8) args.push(dv.getBigUint64(k, true));
    const r = bprintf(m, fmt, args);
    if (typeof r === 'number') return m.ret(r);
    if (size > 0) {
      const out = new Uint8Array(Math.min(size, r.bytes.length + 1));
      out.set(r.bytes.subarray(0, out.length - 1));
      writeArg(m, 165, 1, out, 'the text');
    }
    m.ret(r.bytes.length + 1);
  });
  return h;
}
