// The sample traces in traces/samples/ were recorded by an earlier Rewind and are kept as they
// were: this Rewind must open each of them and find what expected.json says was recorded (the
// state at several steps, as `rewind inspect --json` printed it then), and re-executing them must
// agree step by step. A format change that would strand existing traces fails here.

import { describe, expect, test } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Trace } from './trace.js';
import { verifyTrace } from './verify.js';

const samples = fileURLToPath(new URL('../../../../traces/samples/', import.meta.url));
const expectedFile = join(samples, 'expected.json');
const expected = existsSync(expectedFile)
  ? (JSON.parse(readFileSync(expectedFile, 'utf8')) as Record<string, { summary: { steps: number; runs: unknown[] }; states: Record<string, unknown> }>)
  : {};

describe('sample traces recorded by earlier versions', () => {
  test('there are samples', () => {
    expect(Object.keys(expected).length).toBeGreaterThanOrEqual(3);
  });

  describe.each(Object.entries(expected))('%s', (name, want) => {
    const path = join(samples, name);

    test('opens, with the runs it was recorded with', () => {
      const t = Trace.open(path);
      expect(t.truncated).toBe(false);
      expect(t.lastStep).toBe(want.summary.steps);
      expect(t.runs.map((r) => ({ index: r.index, firstStep: r.firstStep, lastStep: r.lastStep, verdict: r.verdict }))).toEqual(want.summary.runs);
      t.close();
    });

    test('rebuilds the states it was recorded with', () => {
      const t = Trace.open(path);
      for (const [step, state] of Object.entries(want.states)) expect(JSON.parse(JSON.stringify(t.snapshot(Number(step))))).toEqual(state);
      t.close();
    });

    test('re-executes to the same steps', () => {
      expect(verifyTrace(path).difference).toBeUndefined();
    });
  });
});
