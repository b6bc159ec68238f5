import { RewindError } from '../errors.js';
// Classic BPF (cBPF): struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } and the opcode
// bits of include/uapi/linux/filter.h and bpf_common.h. The classes, sizes, ALU and jump
// operations share their values with eBPF (../isa.ts); the ones below are cBPF's own.

export interface CbpfInsn {
  code: number;
  /** Conditional jumps: instructions to skip when true / false. */
  jt: number;
  jf: number;
  /** The 32-bit operand, unsigned. */
  k: number;
}

export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
/** Load modes of BPF_LD/BPF_LDX beside BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM. */
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
/** BPF_RVAL: what BPF_RET returns. */
export const BPF_A = 0x10;
/** BPF_MISCOP. */
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

/** The scratch memory M[0..15]. */
export const BPF_MEMWORDS = 16;
/** The most instructions a classic filter may have (uapi bpf_common.h). */
export const BPF_MAXINSNS_CLASSIC = 4096;

/** Negative load offsets: ancillary data, and loads relative to the network or link header. */
export const SKF_AD_OFF = -0x1000;
export const SKF_NET_OFF = -0x100000;
export const SKF_LL_OFF = -0x200000;

/** Ancillary loads (`ld [SKF_AD_OFF + n]`), with the names bpf_asm gives them. */
export const SKF_AD = {
  PROTOCOL: 0,
  PKTTYPE: 4,
  IFINDEX: 8,
  NLATTR: 12,
  NLATTR_NEST: 16,
  MARK: 20,
  QUEUE: 24,
  HATYPE: 28,
  RXHASH: 32,
  CPU: 36,
  ALU_XOR_X: 40,
  VLAN_TAG: 44,
  VLAN_TAG_PRESENT: 48,
  PAY_OFFSET: 52,
  RANDOM: 56,
  VLAN_TPID: 60,
} as const;
export type SkfAdName = keyof typeof SKF_AD;

const AD_ASM_NAMES: Readonly<Record<number, string>> = {
  0: 'proto',
  4: 'type',
  8: 'ifidx',
  12: 'nla',
  16: 'nlan',
  20: 'mark',
  24: 'queue',
  28: 'hatype',
  32: 'rxhash',
  36: 'cpu',
  40: 'xor',
  44: 'vlan_tci',
  48: 'vlan_avail',
  52: 'poff',
  56: 'rand',
  60: 'vlan_tpid',
};

/** The ancillary field an `ld [k]` names, if k lies in the SKF_AD range and names a known one. */
export function ancillaryName(k: number): SkfAdName | undefined {
  const off = (k | 0) - SKF_AD_OFF;
  if ((k | 0) < SKF_AD_OFF || off >= 64) return undefined;
  return (Object.keys(SKF_AD) as SkfAdName[]).find((n) => SKF_AD[n] === off);
}

const MNEMONIC: Readonly<Record<number, [op: string, operand: string]>> = {
  0x06: ['ret', '#%d'],
  0x16: ['ret', ''],
  0x20: ['ld', '[%d]'],
  0x28: ['ldh', '[%d]'],
  0x30: ['ldb', '[%d]'],
  0x80: ['ld', '#pktlen'],
  0x81: ['ldx', '#pktlen'],
  0x40: ['ld', '[x + %d]'],
  0x48: ['ldh', '[x + %d]'],
  0x50: ['ldb', '[x + %d]'],
  0x00: ['ld', '#0x%x'],
  0x01: ['ldx', '#0x%x'],
  0xb1: ['ldxb', '4*([%d]&0xf)'],
  0x60: ['ld', 'M[%d]'],
  0x61: ['ldx', 'M[%d]'],
  0x02: ['st', 'M[%d]'],
  0x03: ['stx', 'M[%d]'],
  0x05: ['ja', '%j'],
  0x25: ['jgt', '#0x%x'],
  0x35: ['jge', '#0x%x'],
  0x15: ['jeq', '#0x%x'],
  0x45: ['jset', '#0x%x'],
  0x2d: ['jgt', 'x'],
  0x3d: ['jge', 'x'],
  0x1d: ['jeq', 'x'],
  0x4d: ['jset', 'x'],
  0x04: ['add', '#%d'],
  0x14: ['sub', '#%d'],
  0x24: ['mul', '#%d'],
  0x34: ['div', '#%d'],
  0x94: ['mod', '#%d'],
  0x54: ['and', '#0x%x'],
  0x44: ['or', '#0x%x'],
  0xa4: ['xor', '#0x%x'],
  0x64: ['lsh', '#%d'],
  0x74: ['rsh', '#%d'],
  0x0c: ['add', 'x'],
  0x1c: ['sub', 'x'],
  0x2c: ['mul', 'x'],
  0x3c: ['div', 'x'],
  0x9c: ['mod', 'x'],
  0x5c: ['and', 'x'],
  0x4c: ['or', 'x'],
  0xac: ['xor', 'x'],
  0x6c: ['lsh', 'x'],
  0x7c: ['rsh', 'x'],
  0x84: ['neg', ''],
  0x07: ['tax', ''],
  0x87: ['txa', ''],
};

/**
 * One instruction in libpcap's bpf_image() syntax (`tcpdump -d` without the `(000) ` prefix);
 * `pc` makes jump targets absolute. Ancillary loads use bpf_asm's names (`ld #proto`).
 */
export function formatCbpfInsn(insn: CbpfInsn, pc: number): string {
  const entry = MNEMONIC[insn.code];
  if (!entry) return `unimp    0x${insn.code.toString(16)}`;
  const [op, fmt] = entry;
  const ad = (insn.code & 0xe7) === 0x20 ? ancillaryName(insn.k) : undefined;
  const operand = ad
    ? `#${AD_ASM_NAMES[SKF_AD[ad]]}`
    : fmt
        .replace('%d', String(insn.k | 0))
        .replace('%x', (insn.k >>> 0).toString(16))
        .replace('%j', String(pc + 1 + insn.k));
  const isCond = (insn.code & 0x07) === 0x05 && (insn.code & 0xf0) !== 0x00;
  if (isCond) return `${op.padEnd(8)} ${operand.padEnd(16)} jt ${pc + 1 + insn.jt}\tjf ${pc + 1 + insn.jf}`;
  return `${op.padEnd(8)} ${operand}`;
}

/** A whole program as `tcpdump -d` prints it. */
export function formatCbpf(insns: readonly CbpfInsn[]): string {
  return insns.map((insn, pc) => `(${String(pc).padStart(3, '0')}) ${formatCbpfInsn(insn, pc)}`).join('\n');
}

/** Bad classic BPF text or an invalid program; the message names the file and line or the instruction. */
export class CbpfError extends RewindError {
  override name = 'CbpfError';
  constructor(
    message: string,
    /** The instruction the error is about, from 0, when it is about one. */
    readonly insn?: number,
  ) {
    super(message);
  }
}
