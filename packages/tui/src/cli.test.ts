import { expect, test } from 'vitest';
import { rewind } from './testing.js';

test('rewind --help lists every command', () => {
  const r = rewind(['--help']);
  expect(r.status).toBe(0);
  for (const c of ['demo', 'run <program>', 'record <program>', 'inspect <trace>', 'verify <trace>', 'replay <trace>', 'debug <program>', 'test <paths..>', 'kernel-diff <program>', 'conformance-plugin [memory..]']) expect(r.stdout).toContain(`rewind ${c}`);
});

test('no command, or an unknown one, is a one-line error with exit 2', () => {
  for (const args of [[], ['frobnicate']]) {
    const r = rewind(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^rewind: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }
});
