import { expect, test } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadProgramFile } from './inputs.js';
import { Session } from './session.js';

const obj = fileURLToPath(new URL('./fixtures/ch_rings.o', import.meta.url));

test('a program with a 33M-entry array map loads and runs in a small fraction of its dense size', () => {
  const src = loadProgramFile(obj);
  expect(src.maps[0]!.maxEntries).toBe(65537 * 512);
  const dense = src.maps[0]!.maxEntries * 4; // 134 MB
  const before = process.memoryUsage().arrayBuffers;
  const s = new Session(src.programs, src.maps);
  const pkt = (n: number) => new Uint8Array([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, ...new Array(60).fill(0)]);
  const keys = [0, 1, 12345, 33_554_943, 20_000_000];
  for (const k of keys) expect(s.run(undefined, { packet: pkt(k) }).verdict).toBe('XDP_PASS');
  for (const k of keys) expect(s.run(undefined, { packet: pkt(k) }).verdict).toBe('XDP_TX');
  const grown = process.memoryUsage().arrayBuffers - before;
  expect(grown).toBeLessThan(dense / 10);
});
