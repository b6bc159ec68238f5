import { expect, test } from 'vitest';
import { rewind } from './testing.js';

test('rewind --help lists every command', () => {
  const r = rewind(['--help']);
  expect(r.status).toBe(0);
  for (const c of ['demo', 'run <program>', 'kernel-diff <program>', 'conformance-plugin [memory..]']) expect(r.stdout).toContain(`rewind ${c}`);
});

test('no command, or an unknown one, is a one-line error with exit 2', () => {
  for (const args of [[], ['frobnicate']]) {
    const r = rewind(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^rewind: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }
});

test('rewind demo runs the bundled example and shows what it did', () => {
  const r = rewind(['demo']);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('   2:  r3 = *(u16 *)(r1 + 0xc)');
  expect(r.stdout).toMatch(/ran on a 54-byte packet: 18 instructions, exit at pc 17, r0 = 0x1/);
});
