import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CbpfError, formatCbpf } from './insn.js';
import { parseCbpfDump } from './parse.js';

const TCPDUMP = '/usr/bin/tcpdump';
const hasTcpdump = existsSync(TCPDUMP);
if (!hasTcpdump) console.warn('tcpdump not found at /usr/bin/tcpdump: parsing only the recorded fixtures');

const dump = (flag: string, filter: string): string =>
  execFileSync(TCPDUMP, [flag, '-y', 'EN10MB', filter], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// `tcpdump -ddd -y EN10MB ip`, `-dd` and `-d` as tcpdump 4.99.3 / libpcap 1.10.3 print them.
const IP_DDD = '4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n';
const IP_DD = '{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000800 },\n{ 0x6, 0, 0, 0x00040000 },\n{ 0x6, 0, 0, 0x00000000 },\n';
const IP_D = '(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 3\n(002) ret      #262144\n(003) ret      #0';

const FILTERS = [
  'ip',
  'tcp port 80',
  'udp and dst port 53',
  'host 10.0.0.1 or net 192.168.0.0/16',
  'ip6 and src host 2001:db8::1',
  'vlan 100 and ip',
  'tcp[tcpflags] & (tcp-syn|tcp-fin) != 0',
  'ip[2:2] / ip[8] > 1',
  'ip[8] % 5 = 4 or ip[1] ^ 0xff = 0xff',
  'len > 100',
  'less 64',
  'portrange 1000-2000',
  'ether[0] & 1 = 1',
  'icmp6',
  'arp',
  'ip[6:2] & 0x1fff != 0',
];

describe('parseCbpfDump', () => {
  it('reads the recorded -ddd and -dd fixtures alike', () => {
    const expected = [
      { code: 0x28, jt: 0, jf: 0, k: 12 },
      { code: 0x15, jt: 0, jf: 1, k: 0x800 },
      { code: 0x06, jt: 0, jf: 0, k: 262144 },
      { code: 0x06, jt: 0, jf: 0, k: 0 },
    ];
    expect(parseCbpfDump(IP_DDD)).toEqual(expected);
    expect(parseCbpfDump(IP_DD)).toEqual(expected);
    expect(formatCbpf(expected)).toBe(IP_D);
  });

  it('reads the comma-separated form of bpf_asm, tc and xt_bpf', () => {
    expect(parseCbpfDump('4,40 0 0 12,21 0 1 2048,6 0 0 262144,6 0 0 0')).toEqual(parseCbpfDump(IP_DDD));
  });

  it.skipIf(!hasTcpdump)('agrees with tcpdump: -ddd and -dd parse alike, and print back as -d', () => {
    for (const filter of FILTERS) {
      const insns = parseCbpfDump(dump('-ddd', filter), filter);
      expect(parseCbpfDump(dump('-dd', filter), filter), filter).toEqual(insns);
      const d = dump('-d', filter)
        .trimEnd()
        .split('\n')
        .map((l) => l.trimEnd());
      expect(formatCbpf(insns).split('\n').map((l) => l.trimEnd()), filter).toEqual(d);
    }
  });

  it('names the file and line of each problem', () => {
    const cases: [string, string][] = [
      ['', 'f.bpf: empty program'],
      ['x\n1 2 3 4', "f.bpf:1: expected the instruction count (tcpdump -ddd's first line), got 'x'"],
      ['3\n6 0 0 0\n6 0 0 0', 'f.bpf:1: the count says 3 instructions, 2 follow'],
      ['2\n6 0 0 0\n6 0 0', "f.bpf:3: expected four decimal numbers 'code jt jf k', got '6 0 0'"],
      ['1\n6 0 0 0x10', "f.bpf:2: expected four decimal numbers 'code jt jf k', got '6 0 0 0x10'"],
      ['1\n6 0 0 4294967296', 'f.bpf:2: k 4294967296 does not fit 32 bits'],
      ['1\n65536 0 0 0', 'f.bpf:2: code 65536 does not fit 16 bits'],
      ['1\n21 256 0 0', 'f.bpf:2: jump offsets 256/0 do not fit 8 bits'],
      ['{ 0x28, 0, 0, 0x0c },\n{ 0x6, 0, zero, 0 },', "f.bpf:2: expected four numbers '{ code, jt, jf, k }', got '{ 0x6, 0, zero, 0 }'"],
      ['struct sock_filter f[] = {\n{ 0x6, 0, 0, 0 } };', "f.bpf:1: expected '{ code, jt, jf, k },' got 'struct sock_filter f[] = {'"],
    ];
    for (const [text, message] of cases) {
      expect(() => parseCbpfDump(text, 'f.bpf')).toThrow(CbpfError);
      expect(() => parseCbpfDump(text, 'f.bpf')).toThrow(message);
    }
  });
});
