import { describe, expect, test } from 'vitest';
import { kernelAvailable } from '@rewind/vm/kernel';
import { rewind } from '../testing.js';

const kernel = kernelAvailable();
if (!kernel.ok) console.log(`skipping the kernel comparison: ${kernel.reason}`);

// Every example on its capture, with and without its initial maps.
const cases: [string, string, string[]][] = [
  ['xdp-firewall', 'mixed', []],
  ['xdp-firewall', 'mixed', ['--maps', 'examples/xdp-firewall/maps.json']],
  ['xdp-firewall', 'any-sll2', []],
  ['l4-lb', 'lb', []],
  ['l4-lb', 'lb', ['--maps', 'examples/l4-lb/maps.json']],
  ['pkt-parser', 'parser', []],
  ['tc-ratelimit', 'syn-flood', []],
  ['tail-pipeline', 'mixed', ['--section', 'xdp_entry']],
  ['ringbuf-events', 'mixed', []],
];

describe.skipIf(!kernel.ok)('rewind kernel-diff', () => {
  test.each(cases)('%s on %s.pcap %j agrees with the kernel', (name, pcap, extra) => {
    const r = rewind(['kernel-diff', `examples/${name}/${name}.o`, '--pcap', `examples/pcaps/${pcap}.pcap`, ...extra, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.agree).toBe(true);
    expect(doc.differences).toEqual([]);
    // Runs are compared unless they called a time helper (the rate limiter and the event emitter stamp packets).
    if (name === 'tc-ratelimit' || name === 'ringbuf-events') expect(doc.skipped.every((s: { helpers: string[] }) => s.helpers.includes('bpf_ktime_get_ns'))).toBe(true);
    else expect(doc.compared).toBe(doc.runs);
    expect(doc.compared).toBeGreaterThan(0);
  });

  test('a difference is reported and exits 1', () => {
    // A budget of 5 instructions makes Rewind stop where the kernel runs to the end.
    const r = rewind(['kernel-diff', 'examples/xdp-firewall/xdp-firewall.o', '--pcap', 'examples/pcaps/mixed.pcap', '--max-steps', '5']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/run 0: Rewind faulted \(instruction budget exhausted/);
    expect(r.stdout).toMatch(/differences? in 20 compared runs/);
  });
});

test('without bpftool, kernel-diff says so and exits 4', () => {
  const r = rewind(['kernel-diff', 'examples/xdp-firewall/xdp-firewall.o', '--pcap', 'examples/pcaps/mixed.pcap'], { env: { REWIND_BPFTOOL: '/nonexistent/bpftool' } });
  expect(r.status).toBe(4);
  expect(r.stderr).toMatch(/the kernel cannot be asked here: (bpftool is not installed|loading BPF programs needs root)/);
});
