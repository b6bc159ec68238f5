// Helpers made for one map (runtime/helpers/specialized.ts) against the generic helpers: the
// same programs run in a session whose calls with a known map argument go to the specialized
// versions, and in one made with specializeHelpers: false, which only ever calls the helper
// table's generic helpers. Every outcome, fault and map must agree.

import { describe, expect, it } from 'vitest';
import { assemble } from '../../asm/assemble.js';
import { asmPrograms, mapContents, outcomeView } from '../test-support.js';
import { mapHandleArgs } from '../../engine/dataflow.js';
import { BPF_PSEUDO_MAP_IDX, LDDW } from '../../isa.js';
import { BPF_MAP_TYPE, type MapDef } from '../../program.js';
import { validate } from '../../validate.js';
import { Session } from '../session.js';

const mapDef = (name: string, type: number, keySize: number, valueSize: number, maxEntries: number, initialSlots?: MapDef['initialSlots']): MapDef => ({
  name,
  type,
  keySize,
  valueSize,
  maxEntries,
  flags: 0,
  initialSlots,
});

/** Runs every packet through both sessions and expects the same outcomes and maps; returns the plain session. */
function agree(texts: Record<string, string>, maps: MapDef[], entry: string, packets: Uint8Array[], cpus = 1, setup?: (s: Session) => void): Session {
  const progs = asmPrograms(texts, maps);
  const plain = new Session(progs, maps, { cpus, cpu: cpus - 1 });
  const generic = new Session(progs, maps, { cpus, cpu: cpus - 1, specializeHelpers: false });
  setup?.(plain);
  setup?.(generic);
  for (const [i, packet] of packets.entries()) {
    const a = outcomeView(plain.run(entry, { packet }));
    const b = outcomeView(generic.run(entry, { packet }));
    expect({ i, ...a }).toEqual({ i, ...b });
  }
  expect(mapContents(plain)).toEqual(mapContents(generic));
  expect(generic.program(entry).compiled.source).not.toContain('HM[');
  return plain;
}

const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);

// Looks up the key in the packet's first word (read onto the stack, or straight from the packet
// when the second word is 1), adds the packet's third word to the value's first u64 and returns
// the value's high pointer half (0 when the lookup found nothing).
const LOOKUP_ADD = `
  ldxw %r2, [%r1+0]
  ldxw %r3, [%r1+4]
  mov %r4, %r2
  add %r4, 12
  jgt %r4, %r3, none
  ldxw %r6, [%r2+8]
  ldxw %r5, [%r2+4]
  jeq %r5, 1, frompkt
  ldxw %r5, [%r2+0]
  stxw [%r10-4], %r5
  mov %r2, %r10
  add %r2, -4
frompkt:
  lddw %r1, 0
  call 1
  jeq %r0, 0, none
  ldxdw %r7, [%r0+0]
  add %r7, %r6
  stxdw [%r0+0], %r7
  rsh %r0, 32
  exit
none:
  mov %r0, 0
  exit`;

// bpf_map_update_elem then bpf_map_delete_elem of the packet's first word with flags from the
// second word; returns both return codes (update's in the low byte).
const UPDATE_DELETE = `
  ldxw %r2, [%r1+0]
  ldxw %r3, [%r1+4]
  mov %r4, %r2
  add %r4, 12
  jgt %r4, %r3, none
  ldxw %r5, [%r2+0]
  stxw [%r10-4], %r5
  ldxw %r6, [%r2+4]
  ldxw %r7, [%r2+8]
  stxdw [%r10-16], %r7
  lddw %r1, 0
  mov %r2, %r10
  add %r2, -4
  mov %r3, %r10
  add %r3, -16
  mov %r4, %r6
  call 2
  mov %r8, %r0
  and %r8, 0xff
  jne %r7, 7, keep
  lddw %r1, 0
  mov %r2, %r10
  add %r2, -4
  call 3
  lsh %r0, 8
  and %r0, 0xff00
  or %r8, %r0
keep:
  mov %r0, %r8
  exit
none:
  mov %r0, 0
  exit`;

const keyPackets = [u32s(0, 0, 5), u32s(1, 0, 7), u32s(3, 0, 1), u32s(4, 0, 9), u32s(0xffffffff, 0, 1), u32s(2, 1, 3), u32s(7, 1, 2), u32s(1, 0, 7), u32s(0, 0, 5), new Uint8Array(6)];

describe('helpers made for one map agree with the generic helpers', () => {
  it('bpf_map_lookup_elem on arrays, per-CPU arrays and hash maps: in range, past max_entries, keys on the stack and in the packet', () => {
    for (const [type, cpus] of [[BPF_MAP_TYPE.array, 1], [BPF_MAP_TYPE.percpu_array, 3], [BPF_MAP_TYPE.hash, 1], [BPF_MAP_TYPE.percpu_hash, 2], [BPF_MAP_TYPE.lru_hash, 1]] as const) {
      // Keys 1 and 3 are in the map (hash maps hold only those).
      const fill = (s: Session) => {
        for (const k of [1, 3]) expect(s.maps[0]!.update(u32s(k), new Uint8Array(16).fill(k), 0, cpus - 1)).toBe(0);
      };
      const s = agree({ p: LOOKUP_ADD }, [mapDef('m', type, 4, 16, 4)], 'p', keyPackets, cpus, fill);
      // The calls did go to the specialized versions.
      expect(s.program('p').compiled.source).toContain('HM[');
    }
  });

  it('bpf_map_update_elem and bpf_map_delete_elem: flags, full maps, missing keys', () => {
    const packets: Uint8Array[] = [];
    for (const [key, flags, value] of [[1, 0, 3], [1, 1, 4], [1, 2, 5], [2, 2, 6], [3, 0, 7], [4, 0, 8], [5, 0, 9], [6, 1, 1], [1, 0, 7], [9, 4, 1], [2, 0, 7]]) packets.push(u32s(key!, flags!, value!));
    for (const type of [BPF_MAP_TYPE.hash, BPF_MAP_TYPE.array, BPF_MAP_TYPE.lru_hash]) agree({ p: UPDATE_DELETE }, [mapDef('m', type, 4, 8, 4)], 'p', packets);
  });

  it('bpf_tail_call: taken, empty slot, index past max_entries, and the chain limit', () => {
    // `entry` tail-calls the slot in the packet's first word; `again` counts its runs in an
    // array map and tail-calls itself until MAX_TAIL_CALL_CNT stops it.
    const texts = {
      entry: `
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 4
        jgt %r4, %r3, out
        ldxw %r3, [%r2+0]
        lddw %r2, 0
        call 12
      out:
        mov %r0, 1
        exit`,
      pass: `
        mov %r0, 2
        exit`,
      again: `
        mov %r6, %r1
        mov %r2, 0
        stxw [%r10-4], %r2
        mov %r2, %r10
        add %r2, -4
        lddw %r1, 1
        call 1
        jeq %r0, 0, out
        ldxdw %r3, [%r0+0]
        add %r3, 1
        stxdw [%r0+0], %r3
        mov %r1, %r6
        mov %r3, 2
        lddw %r2, 0
        call 12
      out:
        mov %r0, 3
        exit`,
    };
    const maps = [mapDef('jt', BPF_MAP_TYPE.prog_array, 4, 4, 4, [{ index: 1, name: 'pass' }, { index: 2, name: 'again' }]), mapDef('count', BPF_MAP_TYPE.array, 4, 8, 1)];
    const s = agree(texts, maps, 'entry', [u32s(1), u32s(0), u32s(2), u32s(3), u32s(9), u32s(1), u32s(2), new Uint8Array(2)]);
    expect(s.program('entry').compiled.source).toContain('HM[');
    // Two runs of `again`: 33 tail calls each, the first from entry.
    expect([...s.maps[1]!.entries()][0]!.value).toEqual(new Uint8Array(new BigUint64Array([2n * 33n]).buffer));
  });
});

describe('mapHandleArgs', () => {
  const argsOf = (text: string) => {
    const code = assemble(text);
    for (let pc = 0; pc < code.length; pc++) if (code.op[pc] === LDDW && code.imm[pc + 1] === 0) code.src[pc] = BPF_PSEUDO_MAP_IDX;
    const known = mapHandleArgs(code, validate(code, { mapCount: 4 }));
    return [...known].map((m, pc) => [pc, m]).filter(([pc]) => code.op[pc!] === 0x85).map(([, m]) => m);
  };

  it('follows lddw and register copies to the call, and forgets a handle another path or a write replaced', () => {
    expect(
      argsOf(`
        lddw %r1, 2
        call 1
        lddw %r3, 1
        mov %r1, %r3
        call 1
        call 1
        lddw %r1, 3
        jeq %r0, 0, other
        lddw %r2, 3
        call 12
        ja join
      other:
        lddw %r1, 0
      join:
        call 1
        lddw %r1, 1
        add %r1, 0
        call 1
        lddw %r1, 2
        jeq %r0, 1, same
      same:
        call 2
        exit`),
    ).toEqual([2, 1, -1, 3, -1, -1, 2]);
  });
});
