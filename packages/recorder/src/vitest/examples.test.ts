// The example programs, tested through the vitest integration: a failing example leaves its
// trace under traces/failures/ with the command that opens it. Every expectation is what the
// Linux kernel did (examples/kernel-results.json, written by examples/check-kernel.mjs from
// `bpftool prog run` and `bpftool map dump`), not Rewind's own output.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { loadPackets, type PacketInput, type RunInput } from '@rewind/vm';
import { expect, test, type ExpectedOutput, type TestProgram } from './index.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/', import.meta.url));
const RESULTS = `${EXAMPLES}kernel-results.json`;
const haveExamples = existsSync(RESULTS);
if (!haveExamples) console.log(`example tests skipped: ${RESULTS} is missing`);

interface KernelPacket {
  index: number;
  desc: string;
  verdict: string;
  /** The packet after the run, when the program changed it. */
  out?: string;
}
interface KernelCapture {
  packets: KernelPacket[];
  /** Entries after the capture: hex key and value; per-CPU values summed over CPUs (one CPU here). */
  maps: Record<string, { key: string; value: string }[]>;
  events?: { record: string }[];
  printk?: string[];
}
interface KernelRun {
  example: string;
  prog: string;
  maps: string | null;
  captures: Record<string, KernelCapture>;
}

const kernel: Record<string, KernelRun> = haveExamples ? JSON.parse(readFileSync(RESULTS, 'utf8')) : {};
const packets = (capture: string): PacketInput[] => loadPackets({ pcap: `${EXAMPLES}pcaps/${capture}` })!.packets;

/** Loads a column of kernel-results.json as check-kernel.mjs ran it: the object, its program, maps.json for the `+maps` columns. */
function load(bpf: { load: (f: string, o?: object) => TestProgram }, column: string): TestProgram {
  const k = kernel[column]!;
  return bpf.load(`${EXAMPLES}${k.example}/${k.example}.o`, { section: k.prog, ...(k.maps ? { maps: `${EXAMPLES}${k.maps}` } : {}) });
}

/** A packet's run input: the clock follows the capture, as `rewind run` and the kernel batches do. */
const input = (p: PacketInput, extra: RunInput = {}): RunInput => ({ packet: p.data, timeNs: p.timestampNs ?? 0n, ...extra });

/** Columns whose packets are independent: each packet is its own test. tc-ratelimit's verdicts depend on the packets before. */
const PER_PACKET = ['xdp-firewall', 'xdp-firewall+maps', 'l4-lb', 'l4-lb+maps', 'pkt-parser', 'tail-pipeline'];
const SEQUENCES = [...PER_PACKET, 'tc-ratelimit'];

describe.skipIf(!haveExamples)('the examples give the kernel\'s verdicts', () => {
  for (const column of PER_PACKET) {
    for (const [capture, c] of Object.entries(kernel[column]?.captures ?? {})) {
      test.for(c.packets)(`${column} on ${capture} #$index: $desc`, (p, { bpf }) => {
        const prog = load(bpf, column);
        const run = prog.run(input(packets(capture)[p.index]!));
        expect(run).toExitWith(p.verdict);
        // l4-lb rewrites the packets it sends back (XDP_TX); the others must leave theirs alone.
        expect(run).toEmitPacket(p.out ?? packets(capture)[p.index]!.data);
      });
    }
  }
});

describe.skipIf(!haveExamples)('the examples leave the kernel\'s map contents after a whole capture', () => {
  for (const column of SEQUENCES) {
    for (const [capture, c] of Object.entries(kernel[column]?.captures ?? {})) {
      test(`${column} on ${capture}`, ({ bpf }) => {
        const prog = load(bpf, column);
        const runs = packets(capture).map((p) => prog.run(input(p)));
        runs.forEach((run, i) => expect(run).toExitWith(c.packets[i]!.verdict));
        const dumped = Object.entries(c.maps).flatMap(([name, entries]) => entries.map((e) => ({ name, ...e })));
        expect(dumped.length).toBeGreaterThan(0);
        for (const e of dumped) expect(prog).toHaveMapEntry(e.name, e.key, e.value);
      });
    }
  }
});

describe.skipIf(!haveExamples)('ringbuf-events emits the kernel\'s records and bpf_printk lines', () => {
  const k = kernel['ringbuf-events'];
  for (const [capture, c] of Object.entries(k?.captures ?? {})) {
    test(`ringbuf-events on ${capture}`, ({ bpf }) => {
      const prog = load(bpf, 'ringbuf-events');
      // The kernel's records have ts_ns zeroed, and came in on the loopback device (ifindex 1).
      const runs = packets(capture).map((p) => prog.run(input(p, { timeNs: 0n, ctx: { ingress_ifindex: 1 } })));
      runs.forEach((run, i) => expect(run).toExitWith(c.packets[i]!.verdict));
      const records: ExpectedOutput[] = c.events!.map((e) => ({ ringbuf: 'events', data: e.record }));
      const lines: ExpectedOutput[] = c.printk!.map((text) => ({ printk: text }));
      // Which packet produced what (examples/README.md): records in packet order, each printk line from an ICMP echo request.
      const got = runs.flatMap((r) => r.output);
      expect(got.filter((o) => o.kind === 'ringbuf').length).toBe(records.length);
      const byKind = (kind: string) => runs.filter((r) => r.output.some((o) => o.kind === kind)).map((r) => r.index);
      expect(byKind('printk')).toEqual(c.packets.filter((p) => /ICMP echo request/.test(p.desc)).map((p) => p.index));
      let ri = 0;
      let pi = 0;
      for (const run of runs) {
        const want = run.output.map((o) => (o.kind === 'printk' ? lines[pi++]! : records[ri++]!));
        expect(run).toEmitOutput(want);
      }
      expect([ri, pi]).toEqual([records.length, lines.length]);
    });
  }
});
