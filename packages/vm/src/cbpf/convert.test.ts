import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_B,
  BPF_CALL,
  BPF_DIV,
  BPF_END,
  BPF_EXIT,
  BPF_H,
  BPF_IND,
  BPF_JA,
  BPF_JLE,
  BPF_JLT,
  BPF_JGT,
  BPF_JMP,
  BPF_JNE,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MOV,
  BPF_NEG,
  BPF_STX,
  BPF_TO_BE,
  BPF_W,
  BPF_X,
  BPF_XOR,
  encode,
  insnAt,
  type Bytecode,
  type Insn,
} from '../isa.js';
import { arp, ethernet, icmpEcho, ipv4, ipv6, tcp, udp, vlan } from '../packet/build.js';
import { writePcap } from '../packet/pcap.js';
import { cbpfToEbpf, convertCbpf, CBPF_SK_BUFF } from './convert.js';
import { CbpfError, type CbpfInsn } from './insn.js';
import { parseCbpfDump } from './parse.js';
import { referenceCbpfRun, type SkbMeta } from './reference.js';

// The kernel's instruction macros (include/linux/filter.h), to write expected translations
// the way bpf_convert_filter() writes them. Register names as there.
const A = 0;
const X = 7;
const TMP = 8;
const CTX = 6;
const FP = 10;
const ARG1 = 1;
const raw = (op: number, dst: number, src: number, off: number, imm: number): Insn => ({ op, dst, src, off, imm });
const MOV64_IMM = (dst: number, imm: number): Insn => raw(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
const MOV64_REG = (dst: number, src: number): Insn => raw(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
const MOV32_IMM = (dst: number, imm: number): Insn => raw(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm | 0);
const MOV32_REG = (dst: number, src: number): Insn => raw(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
const ALU32_IMM = (op: number, dst: number, imm: number): Insn => raw(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
const ALU32_REG = (op: number, dst: number, src: number): Insn => raw(BPF_ALU | op | BPF_X, dst, src, 0, 0);
const LD_ABS = (size: number, imm: number): Insn => raw(BPF_LD | size | BPF_ABS, 0, 0, 0, imm);
const LD_IND = (size: number, src: number, imm: number): Insn => raw(BPF_LD | size | BPF_IND, 0, src, 0, imm);
const LDX_MEM = (size: number, dst: number, src: number, off: number): Insn => raw(BPF_LDX | size | BPF_MEM, dst, src, off, 0);
const STX_MEM = (size: number, dst: number, src: number, off: number): Insn => raw(BPF_STX | size | BPF_MEM, dst, src, off, 0);
const JMP_IMM = (op: number, dst: number, imm: number, off: number): Insn => raw(BPF_JMP | op | BPF_K, dst, 0, off, imm);
const JMP_REG = (op: number, dst: number, src: number, off: number): Insn => raw(BPF_JMP | op | BPF_X, dst, src, off, 0);
const JMP_A = (off: number): Insn => raw(BPF_JMP | BPF_JA, 0, 0, off, 0);
const ENDIAN_BE = (dst: number, len: number): Insn => raw(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, len);
const EMIT_CALL = (id: number): Insn => raw(BPF_JMP | BPF_CALL, 0, 0, 0, id);
const EXIT = (): Insn => raw(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
const PROLOGUE = [MOV64_IMM(A, 0), MOV64_IMM(X, 0), MOV64_REG(CTX, ARG1)];

const insnsOf = (code: Bytecode): Insn[] => Array.from({ length: code.length }, (_, pc) => insnAt(code, pc));
const prog = (...lines: string[]): CbpfInsn[] => parseCbpfDump(`${lines.length}\n${lines.join('\n')}`);

describe('cbpfToEbpf: the instructions bpf_convert_filter() emits', () => {
  it("tcpdump's `ip` filter", () => {
    // ldh [12]; jeq #0x800 jt 0 jf 1 (true falls through: inverted to jne); ret #262144; ret #0
    const code = cbpfToEbpf(parseCbpfDump('4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n'));
    expect(insnsOf(code)).toEqual([
      ...PROLOGUE,
      LD_ABS(BPF_H, 12), // 3
      JMP_IMM(BPF_JNE, A, 0x800, 2), // 4 → 7
      MOV32_IMM(A, 262144),
      EXIT(),
      MOV32_IMM(A, 0), // 7
      EXIT(),
    ]);
  });

  it('loads, msh, scratch memory, a negative constant, division, jset, ja and an ancillary load', () => {
    const insns = prog(
      '40 0 0 12', //               0: ldh [12]
      '21 0 11 2048', //            1: jeq #0x800 jt 0 jf 11 → jne to 13
      '177 0 0 14', //              2: ldxb 4*([14]&0xf)
      '72 0 0 16', //               3: ldh [x + 16]
      '2 0 0 2', //                 4: st M[2]
      `37 1 0 ${0xfffffff0}`, //    5: jgt #0xfffffff0 jt 1 jf 0
      '60 0 0 0', //                6: div x
      '96 0 0 2', //                7: ld M[2]
      '69 2 1 4', //                8: jset #4 jt 2 jf 1 → jset + ja
      '5 0 0 3', //                 9: ja 13
      '128 0 0 0', //              10: ld #pktlen
      `32 0 0 ${0xfffff000}`, //   11: ld #proto
      '22 0 0 0', //               12: ret a
      '6 0 0 0', //                13: ret #0
    );
    const t = convertCbpf(insns);
    // Classic instruction i starts at eBPF pc: 3 4 5 11 12 13 15 20 21 23 24 25 27 28.
    expect(insnsOf(t.code)).toEqual([
      ...PROLOGUE,
      LD_ABS(BPF_H, 12), // 3
      JMP_IMM(BPF_JNE, A, 0x800, 23), // 4 → 28
      MOV64_REG(TMP, A), // 5: msh keeps A in TMP around the byte load
      LD_ABS(BPF_B, 14),
      ALU32_IMM(BPF_AND, A, 0xf),
      ALU32_IMM(BPF_LSH, A, 2),
      MOV64_REG(X, A),
      MOV64_REG(A, TMP),
      LD_IND(BPF_H, X, 16), // 11
      STX_MEM(BPF_W, FP, A, -12), // 12: M[2] at fp - (4*2 + 4)
      MOV32_IMM(TMP, 0xfffffff0), // 13: zero-extended constant
      JMP_REG(BPF_JGT, A, TMP, 5), // 14 → 20
      MOV32_REG(X, X), // 15: division by X = 0 returns 0
      JMP_IMM(BPF_JNE, X, 0, 2),
      ALU32_REG(BPF_XOR, A, A),
      EXIT(),
      ALU32_REG(BPF_DIV, A, X), // 19
      LDX_MEM(BPF_W, A, FP, -12), // 20
      JMP_IMM(BPF_JSET, A, 4, 3), // 21 → 25
      JMP_A(1), // 22 → 24
      JMP_A(4), // 23 → 28
      LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.len), // 24
      LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.protocol), // 25
      ENDIAN_BE(A, 16),
      EXIT(), // 27: ret a
      MOV32_IMM(A, 0), // 28
      EXIT(),
    ]);
    expect(Array.from(t.origin)).toEqual([
      -1, -1, -1, 0, 1, 2, 2, 2, 2, 2, 2, 3, 4, 5, 5, 6, 6, 6, 6, 6, 7, 8, 8, 9, 10, 11, 11, 12, 13, 13,
    ]);
    expect(t.stackDepth).toBe(12);
  });

  it('inverts jgt/jge when the true branch falls through; other jumps get a ja', () => {
    const insns = prog(
      '0 0 0 16', //   0: ld #0x10
      '1 0 0 3', //    1: ldx #0x3
      '3 0 0 15', //   2: stx M[15]
      '97 0 0 15', //  3: ldx M[15]
      '12 0 0 0', //   4: add x
      '132 0 0 0', //  5: neg
      '7 0 0 0', //    6: tax
      '135 0 0 0', //  7: txa
      '37 0 3 5', //   8: jgt #5 jt 0 jf 3 → jle to 12
      '61 0 2 0', //   9: jge x jt 0 jf 2 → jlt to 12
      '69 0 1 1', //  10: jset #1 jt 0 jf 1 → jset + ja
      '6 0 0 7', //   11: ret #7
      '22 0 0 0', //  12: ret a
    );
    const t = convertCbpf(insns);
    expect(insnsOf(t.code)).toEqual([
      ...PROLOGUE,
      MOV32_IMM(A, 16),
      MOV32_IMM(X, 3),
      STX_MEM(BPF_W, FP, X, -64),
      LDX_MEM(BPF_W, X, FP, -64),
      ALU32_REG(BPF_ADD, A, X),
      raw(BPF_ALU | BPF_NEG, A, 0, 0, 0),
      MOV64_REG(X, A),
      MOV64_REG(A, X),
      JMP_IMM(BPF_JLE, A, 5, 5), // 11 → 17
      JMP_REG(BPF_JLT, A, X, 4), // 12 → 17
      JMP_IMM(BPF_JSET, A, 1, 1), // 13 → 15
      JMP_A(2), // 14 → 17
      MOV32_IMM(A, 7),
      EXIT(),
      EXIT(), // 17
    ]);
    expect(t.stackDepth).toBe(64);
  });

  it('ancillary loads read __sk_buff or call a helper', () => {
    const ad = (n: number): CbpfInsn[] => prog(`32 0 0 ${0xfffff000 + n}`, '22 0 0 0');
    const body = (n: number): Insn[] => insnsOf(cbpfToEbpf(ad(n))).slice(3, -1);
    expect(body(4)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.pkt_type)]);
    expect(body(8)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.ifindex)]);
    expect(body(20)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.mark)]);
    expect(body(24)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.queue_mapping)]);
    expect(body(32)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.hash)]);
    expect(body(40)).toEqual([ALU32_REG(BPF_XOR, A, X)]);
    expect(body(44)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.vlan_tci)]);
    expect(body(48)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.vlan_present)]);
    expect(body(60)).toEqual([LDX_MEM(BPF_W, A, CTX, CBPF_SK_BUFF.vlan_proto), ENDIAN_BE(A, 16)]);
    // BPF_FUNC_get_smp_processor_id and BPF_FUNC_get_prandom_u32, with the kernel's argument setup.
    expect(body(36)).toEqual([MOV64_REG(1, CTX), MOV64_REG(2, A), MOV64_REG(3, X), EMIT_CALL(8)]);
    expect(body(56)).toEqual([MOV64_REG(1, CTX), MOV64_REG(2, A), MOV64_REG(3, X), EMIT_CALL(7)]);
    // The uapi layout (include/uapi/linux/bpf.h).
    expect(CBPF_SK_BUFF).toEqual({ len: 0, pkt_type: 4, mark: 8, queue_mapping: 12, protocol: 16, vlan_present: 20, vlan_tci: 24, vlan_proto: 28, ifindex: 40, hash: 68 });
  });

  it('names the ancillary loads it cannot translate', () => {
    for (const [n, name, asm] of [
      [12, 'NLATTR', 'nla'],
      [16, 'NLATTR_NEST', 'nlan'],
      [28, 'HATYPE', 'hatype'],
      [52, 'PAY_OFFSET', 'poff'],
    ] as const) {
      const insns = prog('6 0 0 1', `32 0 0 ${0xfffff000 + n}`, '22 0 0 0');
      expect(() => cbpfToEbpf(insns, 'f.bpf')).toThrow(CbpfError);
      expect(() => cbpfToEbpf(insns, 'f.bpf')).toThrow(`f.bpf: instruction 1 (ld       #${asm}): ancillary load SKF_AD_${name} is not supported`);
    }
  });

  it('validates first', () => {
    expect(() => cbpfToEbpf(prog('52 0 0 0', '6 0 0 0'), 'f')).toThrow('f: instruction 0 (div #0): division by constant zero');
  });
});

// ---------------------------------------------------------------------------------------
// The kernel as the oracle: load each translation as a BPF_PROG_TYPE_SCHED_CLS program (its
// context is __sk_buff, LD_ABS is allowed, the packet starts at the Ethernet header) and run
// it with BPF_PROG_TEST_RUN; its verdict must match the reference interpreter's.

const BRIDGE = String.raw`
import ctypes, json, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def bpf(cmd, attr):
    r = libc.syscall(ctypes.c_long(321), ctypes.c_long(cmd), ctypes.byref(attr), ctypes.c_long(len(attr)))
    return r, ctypes.get_errno()
req = json.load(sys.stdin)
keep, fds, loads = [], [], []
for hexcode in req["programs"]:
    code = bytes.fromhex(hexcode)
    buf = ctypes.create_string_buffer(code, len(code)); lic = ctypes.create_string_buffer(b"GPL"); log = ctypes.create_string_buffer(1 << 20)
    keep += [buf, lic, log]
    attr = (ctypes.c_ubyte * 128)()
    # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
    struct.pack_into("<IIQQIIQ", attr, 0, 3, len(code) // 8, ctypes.addressof(buf), ctypes.addressof(lic), 1, 1 << 20, ctypes.addressof(log))
    fd, err = bpf(5, attr)
    if fd < 0 and err in (1, 38):
        print(json.dumps({"unavailable": os.strerror(err)})); sys.exit(0)
    fds.append(fd)
    loads.append("" if fd >= 0 else os.strerror(err) + ": " + log.value.decode(errors="replace")[-3000:])
runs = []
for r in req["runs"]:
    data = bytes.fromhex(r["packet"])
    dbuf = ctypes.create_string_buffer(data, len(data))
    ctx = (ctypes.c_ubyte * 12)()  # struct __sk_buff up to mark
    struct.pack_into("<I", ctx, 8, r["mark"])
    attr = (ctypes.c_ubyte * 80)()
    # BPF_PROG_TEST_RUN: prog_fd, retval, data_size_in, data_size_out, data_in, data_out, repeat, duration, ctx_size_in, ctx_size_out, ctx_in
    struct.pack_into("<IIIIQQIIIIQ", attr, 0, fds[r["prog"]], 0, len(data), 0, ctypes.addressof(dbuf), 0, 1, 0, 12, 0, ctypes.addressof(ctx))
    ret, err = bpf(10, attr)
    runs.append(struct.unpack_from("<I", attr, 4)[0] if ret == 0 else "errno %d" % err)
print(json.dumps({"load": loads, "runs": runs}))
`;

function kernelAvailable(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'needs Linux on x86-64';
  if (spawnSync('python3', ['-c', 'import ctypes'], { stdio: 'ignore' }).status !== 0) return 'python3 with ctypes not found';
  return undefined;
}
const whyNoKernel = kernelAvailable();
if (whyNoKernel) console.warn(`skipping the comparison with the kernel: ${whyNoKernel}`);

const work = mkdtempSync(join(tmpdir(), 'rewind-cbpf-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface KernelResult {
  unavailable?: string;
  load: string[];
  runs: (number | string)[];
}

function runInKernel(programs: Uint8Array[], runs: { prog: number; packet: Uint8Array; mark: number }[]): KernelResult {
  const script = join(work, 'bridge.py');
  writeFileSync(script, BRIDGE);
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const input = JSON.stringify({ programs: programs.map(hex), runs: runs.map((r) => ({ ...r, packet: hex(r.packet) })) });
  return JSON.parse(execFileSync('python3', [script], { input, encoding: 'utf8', maxBuffer: 64 << 20 })) as KernelResult;
}

const TCPDUMP = '/usr/bin/tcpdump';
const FILTERS = [
  'ip',
  'ip6',
  'arp',
  'tcp port 80',
  'udp and dst port 53',
  'host 10.0.0.1 or net 192.168.0.0/16',
  'ip6 and src host 2001:db8::1',
  'vlan 100 and ip',
  'vlan and vlan 200',
  'tcp[tcpflags] & (tcp-syn|tcp-fin) != 0',
  'ip[2:2] / ip[8] > 1',
  'ip[8] % 5 = 4 or ip[1] ^ 0xff = 0xff',
  'len > 100',
  'less 64',
  'portrange 1000-2000',
  'ether[0] & 1 = 1',
  'icmp6',
  'icmp[icmptype] = icmp-echo',
  'ip[6:2] & 0x1fff != 0',
  'ip[0] & 0xf > 5',
  'tcp[13] * 3 - 2 > 20',
];

/** Hand-written programs for what tcpdump does not emit: ancillary, negative offsets, shifts by X. */
const HANDWRITTEN: Record<string, string[]> = {
  ancillary: [
    `32 0 0 ${0xfffff000}`, // ld #proto
    '2 0 0 0',
    `32 0 0 ${0xfffff000 + 4}`, // ld #type
    '2 0 0 1',
    `32 0 0 ${0xfffff000 + 20}`, // ld #mark
    '2 0 0 2',
    `32 0 0 ${0xfffff000 + 8}`, // ld #ifidx
    '2 0 0 3',
    `32 0 0 ${0xfffff000 + 48}`, // ld #vlan_avail
    '2 0 0 4',
    '96 0 0 0', // A = proto ^ type*3 ^ mark*5 ^ ifidx*7 ^ vlan_avail*11
    '7 0 0 0',
    '96 0 0 1',
    '36 0 0 3',
    `32 0 0 ${0xfffff000 + 40}`, // ld #xor: A ^= X
    '7 0 0 0',
    '96 0 0 2',
    '36 0 0 5',
    '172 0 0 0', // xor x
    '7 0 0 0',
    '96 0 0 3',
    '36 0 0 7',
    '172 0 0 0',
    '7 0 0 0',
    '96 0 0 4',
    '36 0 0 11',
    '172 0 0 0',
    '22 0 0 0',
  ],
  // Loads relative to the network header (SKF_NET_OFF) and the link header (SKF_LL_OFF), and one out of range.
  negativeOffsets: [
    `48 0 0 ${0x100000000 - 0x100000 + 9}`, // ldb [net + 9]: the IPv4 protocol
    '7 0 0 0',
    `40 0 0 ${0x100000000 - 0x200000 + 12}`, // ldh [ll + 12]: the ethertype
    '12 0 0 0', // add x
    '7 0 0 0',
    `32 0 0 ${0x100000000 - 0x100000 + 0xf0000}`, // far past the packet: returns 0
    '22 0 0 0',
  ],
  indirect: [
    '177 0 0 14', // ldxb 4*([14]&0xf)
    '72 0 0 14', // ldh [x + 14]: the TCP/UDP source port
    '7 0 0 0',
    `80 0 0 ${0x100000000 - 1}`, // ldb [x - 1]
    '12 0 0 0',
    '22 0 0 0',
  ],
  arithmetic: [
    '128 0 0 0', // ld #pktlen
    '1 0 0 40', // ldx #40: shift counts are taken mod 32
    '108 0 0 0', // lsh x
    '7 0 0 0',
    '129 0 0 0', // ldx #pktlen
    '124 0 0 0', // rsh x
    '36 0 0 2654435761', // mul #0x9e3779b1
    '132 0 0 0', // neg
    '84 0 0 4294967295', // and #0xffffffff
    `37 0 1 ${0xfffffff0}`, // jgt #0xfffffff0
    '6 0 0 1',
    '1 0 0 0', // ldx #0
    '156 0 0 0', // mod x: by zero, returns 0
    '6 0 0 2',
  ],
  divByPacket: [
    '48 0 0 23', // ldb [23]: IPv4 protocol or garbage
    '7 0 0 0',
    '40 0 0 16', // ldh [16]
    '60 0 0 0', // div x
    '148 0 0 7', // mod #7
    '4 0 0 1',
    '22 0 0 0',
  ],
};

function samplePackets(): Uint8Array[] {
  const frames = [
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, payload: tcp({ sport: 1234, dport: 80, flags: 'S' }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '192.168.3.4', dst: '10.9.9.9', proto: 6, payload: tcp({ sport: 80, dport: 1500, flags: 'F.', payload: new Uint8Array(20) }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '8.8.8.8', proto: 17, ttl: 9, payload: udp({ sport: 5353, dport: 53, payload: new Uint8Array(30) }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.5', dst: '10.0.0.1', proto: 1, payload: icmpEcho({ id: 1, seq: 1, payload: new Uint8Array(56) }) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.5', dst: '10.0.0.1', proto: 17, id: 3, fragOffset: 1480, payload: new Uint8Array(40) }) }),
    ethernet({ type: 0x0800, payload: ipv4({ src: '10.0.0.5', dst: '10.0.0.1', proto: 6, options: Uint8Array.of(1, 1, 1, 1, 148, 4, 0, 0), payload: tcp({ sport: 1999, dport: 22, flags: 'P.' }) }) }),
    ethernet({ type: 0x86dd, payload: ipv6({ src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 6, payload: tcp({ sport: 443, dport: 1024, flags: 'S.' }) }) }),
    ethernet({ type: 0x86dd, payload: ipv6({ src: 'fe80::1', dst: 'ff02::1', nextHeader: 58, payload: icmpEcho({ id: 1, seq: 2, v6: true }) }) }),
    ethernet({ dst: 'ff:ff:ff:ff:ff:ff', type: 0x0806, payload: arp({ op: 'request', sha: '02:00:00:00:00:01', spa: '10.0.0.1', tpa: '10.0.0.2' }) }),
    ethernet({ type: 0x8100, payload: vlan({ vid: 100, type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '10.0.0.3', proto: 17, payload: udp({ sport: 1, dport: 53 }) }) }) }),
    ethernet({ type: 0x88a8, payload: vlan({ vid: 10, type: 0x8100, payload: vlan({ vid: 200, type: 0x86dd, payload: ipv6({ src: '::1', dst: '::2', nextHeader: 59 }) }) }) }),
    ethernet({ dst: '01:00:5e:00:00:01', type: 0x0800, payload: ipv4({ src: '10.0.0.1', dst: '224.0.0.1', proto: 2, payload: new Uint8Array(8) }) }),
    ethernet({ dst: '00:00:00:00:00:00', type: 0x88cc, payload: new Uint8Array(2) }),
  ];
  // Mutations of the above, deterministic, to reach the unusual paths.
  let seed = 7;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const mutated: Uint8Array[] = [];
  for (let i = 0; i < 60; i++) {
    const f = frames[i % frames.length]!.slice(0, 14 + rand(frames[i % frames.length]!.length - 13));
    for (let k = rand(4); k > 0; k--) f[14 + rand(Math.max(1, f.length - 14))] = rand(256);
    // BPF_PROG_TEST_RUN refuses IP frames whose network header is cut short.
    const type = (f[12]! << 8) | f[13]!;
    if (f.length >= (type === 0x0800 ? 34 : type === 0x86dd ? 54 : 15)) mutated.push(f);
  }
  return [...frames, ...mutated];
}

/**
 * What the kernel's test run gives ancillary loads: eth_type_trans() on the loopback device
 * (ifindex 1, address 0, and no broadcast address, so ff:ff:ff:ff:ff:ff is PACKET_MULTICAST).
 */
function testRunMeta(frame: Uint8Array, mark: number): SkbMeta {
  const dst = frame.subarray(0, 6);
  const pktType = dst[0]! & 1 ? 2 : dst.every((b) => b === 0) ? 0 : 3;
  return { protocol: (frame[12]! << 8) | frame[13]!, pktType, ifindex: 1, mark };
}

describe.skipIf(whyNoKernel !== undefined)('the kernel runs the translations as the reference interpreter does', () => {
  it('tcpdump filters and hand-written programs, on built and mutated packets', () => {
    const programs: [string, CbpfInsn[]][] = Object.entries(HANDWRITTEN).map(([name, lines]) => [name, prog(...lines)]);
    if (existsSync(TCPDUMP)) {
      for (const f of FILTERS) programs.push([f, parseCbpfDump(execFileSync(TCPDUMP, ['-ddd', '-y', 'EN10MB', f], { encoding: 'utf8' }), f)]);
    } else console.warn('tcpdump not found: comparing the hand-written programs only');
    const packets = samplePackets();
    const runs = programs.flatMap((_, p) => packets.map((packet, i) => ({ prog: p, packet, mark: i * 0x01010101 })));
    const result = runInKernel(
      programs.map(([, insns]) => encode(cbpfToEbpf(insns))),
      runs,
    );
    if (result.unavailable) {
      console.warn(`bpf() is not available here (${result.unavailable}): skipping`);
      return;
    }
    programs.forEach(([name], i) => expect(result.load[i], `verifier on ${name}`).toBe(''));
    let nonzero = 0;
    runs.forEach((r, i) => {
      const expected = referenceCbpfRun(programs[r.prog]![1], r.packet, testRunMeta(r.packet, r.mark));
      if (expected !== 0) nonzero++;
      expect(result.runs[i], `${programs[r.prog]![0]} on packet ${runs.indexOf(r) % packets.length}`).toBe(expected);
    });
    // The comparison means something only if verdicts vary.
    expect(nonzero).toBeGreaterThan(runs.length / 10);
  });
});

// libpcap as a second oracle for the reference interpreter: tcpdump reading a file runs the
// same compiled filter in userland; the packets it prints are those with a nonzero verdict.
describe.skipIf(!existsSync(TCPDUMP))('the reference interpreter agrees with libpcap', () => {
  it('tcpdump -r selects the packets the reference accepts', () => {
    const packets = samplePackets();
    const file = join(work, 'samples.pcap');
    // Packet i gets timestamp i seconds, which tcpdump -tt prints first on its line.
    writeFileSync(file, writePcap(packets.map((data, i) => ({ timestampNs: BigInt(i) * 1_000_000_000n, data }))));
    let matched = 0;
    for (const f of FILTERS) {
      const insns = parseCbpfDump(execFileSync(TCPDUMP, ['-ddd', '-y', 'EN10MB', f], { encoding: 'utf8' }), f);
      const out = execFileSync(TCPDUMP, ['-r', file, '-n', '-tt', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const theirs = out
        .split('\n')
        .map((l) => /^(\d+)\.000000 /.exec(l)?.[1])
        .filter((n): n is string => n !== undefined)
        .map(Number);
      const ours = packets.flatMap((p, i) => (referenceCbpfRun(insns, p) !== 0 ? [i] : []));
      expect(ours, f).toEqual(theirs);
      matched += ours.length;
    }
    expect(matched).toBeGreaterThan(FILTERS.length);
    expect(matched).toBeLessThan(FILTERS.length * packets.length / 2);
  });
});
