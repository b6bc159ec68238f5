// Seeded mutations and truncations of the fixture objects: the loader either loads the
// result or rejects it with an ElfError or BtfError, never another exception, never a hang.
// The type utilities are run over whatever BTF survives, under the same rule.

import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { BtfError, formatValue, sizeOf, typeName } from '../btf/index.js';
import { ElfError, parseElf } from './elf.js';
import { loadObject } from './loader.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);
const OBJECTS = ['xdp_flow', 'tc_subprog', 'legacy_maps', 'loop_cb', 'prog_array', 'core', 'kinds'];
// FUZZ_ROUNDS and FUZZ_SEED run longer or different campaigns: FUZZ_ROUNDS=100000 npx vitest run fuzz
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 0);
/** Longest a single load may take; a hang shows up as a round far beyond this. */
const MAX_MS = 1000;

/** mulberry32: a small, seedable PRNG so a failing round can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0xffffffff, 0x18, 0x85, 24, 64];

/** Byte ranges worth aiming at: headers, symbols, relocations, BTF and code. */
function regions(bytes: Uint8Array, name: string): [number, number][] {
  const elf = parseElf(bytes, name);
  const shoff = Number(new DataView(bytes.buffer).getBigUint64(0x28, true));
  const out: [number, number][] = [[0, 64], [shoff, elf.sections.length * 64]];
  for (const s of elf.sections) {
    if (s.data.length > 0 && !s.name.startsWith('.debug')) out.push([s.offset, s.data.length]);
  }
  return out;
}

function mutate(orig: Uint8Array, targets: [number, number][], rnd: () => number): Uint8Array {
  const pick = (n: number): number => Math.floor(rnd() * n);
  const strategy = pick(5);
  if (strategy === 0) return orig.slice(0, pick(orig.length));
  const b = orig.slice();
  const dv = new DataView(b.buffer);
  const edits = 1 + pick(4);
  for (let i = 0; i < edits; i++) {
    const [start, len] = strategy === 1 ? [0, b.length] : targets[pick(targets.length)]!;
    const at = start + pick(Math.max(1, len - 4));
    if (at + 4 > b.length) continue;
    switch (strategy) {
      case 1:
        b[at] = pick(256);
        break;
      case 2:
        dv.setUint32(at - (at % 4), INTERESTING[pick(INTERESTING.length)]!, true);
        break;
      case 3:
        b[at] ^= 1 << pick(8);
        break;
      default: {
        // Copy a chunk from elsewhere in the file over this spot.
        const from = pick(b.length - 16);
        b.copyWithin(at, from, from + Math.min(16, b.length - at));
      }
    }
  }
  return b;
}

describe.each(OBJECTS)('%s.o under mutation', (name) => {
  test(`${ROUNDS} seeded mutations load or fail with ElfError/BtfError`, () => {
    const orig = new Uint8Array(readFileSync(new URL(`${name}.o`, FIXTURES)));
    const targets = regions(orig, name);
    const outcomes = { loaded: 0, elf: 0, btf: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const seed = (name.length * 7919 + round + SEED) * 2654435761;
      const bytes = mutate(orig, targets, prng(seed));
      const t0 = performance.now();
      try {
        const obj = loadObject(bytes, `${name}.o`, { type: 'xdp' });
        outcomes.loaded++;
        // Whatever BTF survived must also be safe to name, size and format.
        if (obj.btf) {
          for (const t of obj.btf.types) {
            try {
              typeName(obj.btf, t.id);
              sizeOf(obj.btf, t.id);
            } catch (e) {
              if (!(e instanceof BtfError)) throw e;
            }
          }
          for (const m of obj.maps) {
            if (m.btfValueTypeId === undefined) continue;
            try {
              formatValue(obj.btf, m.btfValueTypeId, m.initialValue ?? new Uint8Array(m.valueSize));
            } catch (e) {
              if (!(e instanceof BtfError)) throw e;
            }
          }
        }
      } catch (e) {
        if (e instanceof ElfError) outcomes.elf++;
        else if (e instanceof BtfError) outcomes.btf++;
        else throw new Error(`${name}.o round ${round} (seed ${seed}): ${String(e)}`, { cause: e });
        expect((e as Error).message.startsWith(`${name}.o: `)).toBe(true);
      }
      const ms = performance.now() - t0;
      if (ms > MAX_MS) throw new Error(`${name}.o round ${round} (seed ${seed}) took ${ms.toFixed(0)} ms`);
    }
    // The mutations reach past the ELF header: some objects still load, some fail deep inside.
    if (process.env.FUZZ_ROUNDS) console.log(name, outcomes);
    expect(outcomes.loaded + outcomes.elf + outcomes.btf).toBe(ROUNDS);
    expect(outcomes.elf).toBeGreaterThan(0);
  });
});
