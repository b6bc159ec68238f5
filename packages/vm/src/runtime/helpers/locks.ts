// bpf_spin_lock and bpf_spin_unlock (kernel/bpf/helpers.c). A run is one CPU, so a lock never
// spins; what the verifier enforces at load time (one lock held at a time, released before
// exit, unlocking the lock that was taken) is checked as the run goes. The lock word in the map
// value holds 1 while the lock is taken, as the kernel's queued spinlock's locked byte does.

import type { HelperFn, Machine } from '../../engine/machine.js';
import type { HelperEnv } from './index.js';
import { helperFault, writeArg } from './common.js';

function lockArg(m: Machine, id: number): void {
  const r = m.mem.regionOf(m.argHi(1));
  if (!r || r.kind !== 'map_value') throw helperFault(m, id, `argument 1 (r1) must point to a struct bpf_spin_lock in a map value, it is ${m.mem.describePointer(m.argLo(1), m.argHi(1)) ?? 'a scalar'} (the verifier refuses this)`);
  if ((m.argLo(1) & 3) !== 0) throw helperFault(m, id, `the lock at ${m.mem.describePointer(m.argLo(1), m.argHi(1))} is not 4-byte aligned (the verifier refuses this)`);
}

const word = (v: number) => Uint8Array.of(v, 0, 0, 0);

export function lockHelpers(env: HelperEnv): Map<number, HelperFn> {
  const h = new Map<number, HelperFn>();

  // 93: long bpf_spin_lock(struct bpf_spin_lock *lock)
  h.set(93, (m) => {
    lockArg(m, 93);
    const held = env.run.lock;
    if (held) throw helperFault(m, 93, `a lock is already held (taken at insn ${held.pc}); the verifier allows one at a time`);
    writeArg(m, 93, 1, word(1), 'the lock word');
    env.run.lock = { lo: m.argLo(1), hi: m.argHi(1), pc: m.pc, step: m.steps };
    m.ret(0);
  });

  // 94: long bpf_spin_unlock(struct bpf_spin_lock *lock)
  h.set(94, (m) => {
    lockArg(m, 94);
    const held = env.run.lock;
    if (!held) throw helperFault(m, 94, 'no lock is held (the verifier refuses this)');
    if (held.lo !== m.argLo(1) || held.hi !== m.argHi(1)) {
      throw helperFault(m, 94, `the lock held is ${m.mem.describePointer(held.lo, held.hi)} (taken at insn ${held.pc}), not this one (the verifier refuses this)`);
    }
    writeArg(m, 94, 1, word(0), 'the lock word');
    env.run.lock = undefined;
    m.ret(0);
  });
  return h;
}
