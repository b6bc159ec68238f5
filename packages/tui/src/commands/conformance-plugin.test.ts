import { describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { encode, parseDataFile } from '@rewind/vm';
import { REPO, rewind } from '../testing.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
// r0 = *(u8 *)(r1 + 1) + r2, exit: reads the memory and its length.
const program = 'b7 00 00 00 00 00 00 00 71 10 01 00 00 00 00 00 0f 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00';

describe('rewind conformance-plugin', () => {
  test('the program on standard input, the memory as the first argument', () => {
    const r = rewind(['conformance-plugin', '0a 0b 0c'], { input: program });
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toBe('e\n'); // 0x0b + 3
  });

  test('the program in --program, the memory before or after the options', () => {
    expect(rewind(['conformance-plugin', '--program', program, '0102']).stdout).toBe('4\n');
    expect(rewind(['conformance-plugin', '0102', '--program', program]).stdout).toBe('4\n');
    expect(rewind(['conformance-plugin', '--program', program.replace(/ /g, ''), '01', '02', '03']).stdout).toBe('5\n');
  });

  test('a run error is printed and exits non-zero', () => {
    const r = rewind(['conformance-plugin', '--program', program]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^fault at insn 1 \(r0 = \*\(u8 \*\)\(r1 \+ 0x1\)\): read of 1 byte at mem\+1, mem is 0 bytes\n$/);
  });

  test.each([
    ['00', /program on standard input: 1 bytes is not a whole number|not a whole number of 8-byte instructions/],
    ['zz00000000000000', /'z' is not a hex digit/],
    ['ff00000000000000 9500000000000000', /invalid program: unknown opcode 0xff at pc 0/],
  ])('a bad program %s is one clear line and exits 1', (input, pattern) => {
    const r = rewind(['conformance-plugin'], { input });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('an unknown option exits 2', () => {
    expect(rewind(['conformance-plugin', '--nope'], { input: program }).status).toBe(2);
  });

  const bench = join(REPO, '../shared/bench');
  test.skipIf(!existsSync(bench))('the shared bench programs give their expected r0', () => {
    for (const f of readdirSync(bench).filter((x) => x.endsWith('.data'))) {
      const t = parseDataFile(readFileSync(join(bench, f), 'utf8'), { file: f });
      const r = rewind(['conformance-plugin', hex(t.mem ?? new Uint8Array(0))], { input: hex(encode(t.code!)) });
      expect(r.status, f).toBe(0);
      expect(BigInt('0x' + r.stdout.trim()), f).toBe(t.result);
    }
  });
});
