import { describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ethernet, ipv4, tcp, writePcap } from '@rewind/vm';
import { rewind } from '../testing.js';

const flow = 'packages/vm/src/elf/fixtures/xdp_flow.o';
const tmp = mkdtempSync(join(tmpdir(), 'rewind-run-'));

function tcpPacket(sport: number, dport: number): Uint8Array {
  return ethernet({ src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02', type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport, dport, flags: 'S' }) }) } as never);
}

describe('rewind run', () => {
  test('runs a .data file on its memory and checks the expected r0', () => {
    const r = rewind(['run', 'examples/asm/tcp-dport.data']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/run 0: r0 = 0x1, 18 instructions/);
    expect(r.stdout).toMatch(/expected r0 = 0x1: ok/);
  });

  test('runs an object on every packet of a pcap, maps persisting across runs', () => {
    const pcap = join(tmp, 'two.pcap');
    writeFileSync(pcap, writePcap([
      { timestampNs: 1_000_000_000n, data: tcpPacket(1000, 80) },
      { timestampNs: 2_000_000_000n, data: tcpPacket(1001, 80) },
      { timestampNs: 3_000_000_000n, data: tcpPacket(1002, 80) },
      { timestampNs: 4_000_000_000n, data: tcpPacket(1003, 80) },
    ]));
    const r = rewind(['run', flow, '--pcap', pcap, '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.runs).toHaveLength(4);
    // xdp_count returns XDP_TX on every 4th packet (total_packets % sample_rate, sample_rate = 4).
    expect(doc.runs.map((x: { verdict: string }) => x.verdict)).toEqual(['XDP_PASS', 'XDP_PASS', 'XDP_PASS', 'XDP_TX']);
    expect(doc.runs[3].retval).toBe(3);
    expect(doc.runs[0].r0).toMatch(/^0x[0-9a-f]{16}$/);
    expect(doc.runs[0].packet).toBe(Buffer.from(tcpPacket(1000, 80)).toString('hex'));
    // The .bss counter saw four packets; the flow entry counted them and their bytes.
    expect(doc.maps['.bss']).toEqual([{ key: '00000000', value: '0400000000000000' }]);
    const entry = doc.maps.flows[0];
    const value = Buffer.from(entry.value, 'hex');
    expect(value.readBigUInt64LE(0)).toBe(4n);
    expect(value.readBigUInt64LE(8)).toBe(BigInt(4 * tcpPacket(1, 2).length));
  });

  test('--maps sets entries before the first run and accepts a whole --json output', () => {
    const first = JSON.parse(rewind(['run', flow, '--packet-hex', Buffer.from(tcpPacket(1, 80)).toString('hex'), '--json']).stdout);
    const saved = join(tmp, 'state.json');
    writeFileSync(saved, JSON.stringify(first));
    const again = JSON.parse(rewind(['run', flow, '--packet-hex', Buffer.from(tcpPacket(1, 80)).toString('hex'), '--maps', saved, '--json']).stdout);
    const packets = (doc: { maps: { flows: { value: string }[] } }) => Buffer.from(doc.maps.flows[0]!.value, 'hex').readBigUInt64LE(0);
    expect(packets(first)).toBe(1n);
    expect(packets(again)).toBe(2n);
  });

  test('--repeat runs each packet again from its original bytes', () => {
    const r = rewind(['run', flow, '--packet-hex', Buffer.from(tcpPacket(1, 80)).toString('hex'), '--repeat', '4', '--json']);
    const doc = JSON.parse(r.stdout);
    expect(doc.runs.map((x: { verdict: string }) => x.verdict)).toEqual(['XDP_PASS', 'XDP_PASS', 'XDP_PASS', 'XDP_TX']);
  });

  test('--dump-maps prints the named maps', () => {
    const r = rewind(['run', flow, '--packet-hex', Buffer.from(tcpPacket(5, 53)).toString('hex'), '--dump-maps', '.bss']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/map \.bss \(array, 1 entry shown\):\n  00000000 => 0100000000000000/);
  });

  test.each([
    [['run', 'no-such-file.o'], /no-such-file\.o: cannot read the program: no such file/],
    [['run', 'package.json'], /package\.json: not a BPF object/],
    [['run', flow, '--section', 'nope'], /no program or section 'nope'/],
    [['run', flow, '--repeat', '0'], /--repeat must be an integer of at least 1/],
    [['run', flow, '--pcap', 'package.json'], /package\.json: .*(magic|capture)/i],
    [['run', flow, '--packet-hex', 'zz'], /hex/i],
    [['run', flow, '--ctx', 'nosuchfield=1', '--packet-hex', '00'], /xdp_md has no field 'nosuchfield'/],
    [['run', flow, '--dump-maps', 'nomap'], /--dump-maps: no map 'nomap'/],
    [['run', flow, '--pcap', 'a', '--packet-hex', '00'], /give one of --pcap, --packet-file, --packet-hex/],
  ])('bad input %j is one clear line', (args, pattern) => {
    const r = rewind(args);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

test('a --maps file that is not JSON is one printable line', () => {
  const r = rewind(['run', flow, '--maps', 'examples/pcaps/mixed.pcap']);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^rewind: examples\/pcaps\/mixed\.pcap: --maps is not valid JSON \(Unexpected token '\?'\)\n$/);
});
