import { describe, expect, it } from 'vitest';
import { FakeTrace } from './fake-trace.js';

describe('FakeTrace', () => {
  it('records three runs with the verdicts their packets call for', () => {
    const t = new FakeTrace();
    expect(t.runs.map((r) => r.verdict)).toEqual(['XDP_PASS', 'XDP_PASS', 'XDP_DROP']);
    for (const r of t.runs) expect(t.state(r.lastStep).atEnd).toBe(true);
    expect(t.runs[1]!.firstStep).toBe(t.runs[0]!.lastStep + 1);
  });
  it('enters the callee one frame deeper and counts the TCP packet in the map', () => {
    const t = new FakeTrace();
    const deep = Array.from({ length: t.runs[0]!.lastStep + 1 }, (_, s) => t.position(s)).filter((p) => p.depth === 1);
    expect(deep.length).toBeGreaterThan(5);
    expect(t.state(t.runs[0]!.lastStep).maps.counts).toEqual([{ key: '06000000', value: '0600000000000000' }]);
    expect(t.state(t.runs[0]!.lastStep).packet!.bytes[0]).toBe(0xaa);
  });
});
