import { afterAll, expect, test } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadProgramFile } from './inputs.js';

const dir = mkdtempSync(join(tmpdir(), 'rewind-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a .data file takes `-- asm @ file` from next to itself, named by an absolute or a relative path', () => {
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'prog.asm'), 'mov %r0, 42\nexit\n');
  const data = join(dir, 'sub', 'prog.data');
  writeFileSync(data, '-- asm @ prog.asm\n-- result\n0x2a\n');
  for (const path of [data, relative(process.cwd(), data)]) {
    const src = loadProgramFile(path);
    expect(src.programs[0]!.code.length).toBe(2);
    expect(src.expected).toBe(42n);
  }
});
