// The kernel's checks on a classic filter before it runs one: bpf_check_basics_ok(),
// chk_code_allowed(), bpf_check_classic() and check_load_and_stores() in net/core/filter.c.
// The kernel answers -EINVAL; here each rejection names the instruction and the rule.

import {
  BPF_ABS,
  BPF_ALU,
  BPF_B,
  BPF_DIV,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MOD,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_W,
  BPF_X,
  BPF_ADD,
  BPF_SUB,
  BPF_MUL,
  BPF_AND,
  BPF_OR,
  BPF_XOR,
  BPF_NEG,
} from '../isa.js';
import {
  BPF_A,
  BPF_LEN,
  BPF_MAXINSNS_CLASSIC,
  BPF_MEMWORDS,
  BPF_MISC,
  BPF_MSH,
  BPF_RET,
  BPF_TAX,
  BPF_TXA,
  CbpfError,
  SKF_AD_OFF,
  ancillaryName,
  formatCbpfInsn,
  type CbpfInsn,
} from './insn.js';

/** chk_code_allowed(): the opcodes a socket filter may use. */
const ALLOWED = new Set<number>([
  ...[BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH].flatMap((op) => [
    BPF_ALU | op | BPF_K,
    BPF_ALU | op | BPF_X,
  ]),
  BPF_ALU | BPF_NEG,
  BPF_LD | BPF_W | BPF_ABS,
  BPF_LD | BPF_H | BPF_ABS,
  BPF_LD | BPF_B | BPF_ABS,
  BPF_LD | BPF_W | BPF_LEN,
  BPF_LD | BPF_W | BPF_IND,
  BPF_LD | BPF_H | BPF_IND,
  BPF_LD | BPF_B | BPF_IND,
  BPF_LD | BPF_IMM,
  BPF_LD | BPF_MEM,
  BPF_LDX | BPF_W | BPF_LEN,
  BPF_LDX | BPF_B | BPF_MSH,
  BPF_LDX | BPF_IMM,
  BPF_LDX | BPF_MEM,
  BPF_ST,
  BPF_STX,
  BPF_MISC | BPF_TAX,
  BPF_MISC | BPF_TXA,
  BPF_RET | BPF_K,
  BPF_RET | BPF_A,
  BPF_JMP | BPF_JA,
  ...[BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSET].flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]),
]);

const isConditionalJump = (code: number): boolean => (code & 0x07) === BPF_JMP && (code & 0xf0) !== BPF_JA;

/** Throws a CbpfError naming the instruction unless the kernel would accept `insns` as a socket filter. */
export function checkClassic(insns: readonly CbpfInsn[], file = 'cBPF'): void {
  const flen = insns.length;
  if (flen === 0 || flen > BPF_MAXINSNS_CLASSIC) {
    throw new CbpfError(`${file}: a filter has 1 to ${BPF_MAXINSNS_CLASSIC} instructions, this one has ${flen}`);
  }
  const fail = (pc: number, why: string): never => {
    throw new CbpfError(`${file}: instruction ${pc} (${formatCbpfInsn(insns[pc]!, pc).replace(/\s+/g, ' ')}): ${why}`, pc);
  };
  insns.forEach((insn, pc) => {
    const { code, k } = insn;
    if (!ALLOWED.has(code)) fail(pc, `opcode 0x${code.toString(16).padStart(2, '0')} is not allowed in a socket filter`);
    switch (code) {
      case BPF_ALU | BPF_DIV | BPF_K:
      case BPF_ALU | BPF_MOD | BPF_K:
        if (k === 0) fail(pc, 'division by constant zero');
        break;
      case BPF_ALU | BPF_LSH | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (k >= 32) fail(pc, `shift by ${k} (must be below 32)`);
        break;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS) fail(pc, `scratch memory index ${k} (M[] has ${BPF_MEMWORDS} words)`);
        break;
      case BPF_JMP | BPF_JA:
        // cBPF jumps only go forward; the target must be an instruction of the filter.
        if (k >= flen - pc - 1) fail(pc, `jump target ${pc + 1 + k} is past the last instruction ${flen - 1}`);
        break;
      case BPF_LD | BPF_W | BPF_ABS:
      case BPF_LD | BPF_H | BPF_ABS:
      case BPF_LD | BPF_B | BPF_ABS:
        if ((k | 0) >= SKF_AD_OFF && (k | 0) < 0 && !ancillaryName(k)) fail(pc, `unknown ancillary load SKF_AD_OFF + ${(k | 0) - SKF_AD_OFF}`);
        break;
      default:
        if (isConditionalJump(code)) {
          for (const [name, off] of [['jt', insn.jt], ['jf', insn.jf]] as const) {
            if (pc + off + 1 >= flen) fail(pc, `${name} target ${pc + off + 1} is past the last instruction ${flen - 1}`);
          }
        }
    }
  });
  const last = insns[flen - 1]!.code;
  if (last !== (BPF_RET | BPF_K) && last !== (BPF_RET | BPF_A)) fail(flen - 1, 'the last instruction must be a ret');
  checkLoadAndStores(insns, fail);
}

/**
 * check_load_and_stores(): M[] is not cleared between packets, so every path must write a cell
 * before reading it. One forward pass suffices because jumps only go forward.
 */
function checkLoadAndStores(insns: readonly CbpfInsn[], fail: (pc: number, why: string) => never): void {
  const masks = new Uint16Array(insns.length).fill(0xffff);
  let valid = 0;
  insns.forEach((insn, pc) => {
    valid &= masks[pc]!;
    const { code, k } = insn;
    if (code === BPF_ST || code === BPF_STX) valid |= 1 << k;
    else if (code === (BPF_LD | BPF_MEM) || code === (BPF_LDX | BPF_MEM)) {
      if (!(valid & (1 << k))) fail(pc, `reads M[${k}], which some path reaches without writing it`);
    } else if (code === (BPF_JMP | BPF_JA)) {
      masks[pc + 1 + k]! &= valid;
      valid = 0xffff;
    } else if (isConditionalJump(code)) {
      masks[pc + 1 + insn.jt]! &= valid;
      masks[pc + 1 + insn.jf]! &= valid;
      valid = 0xffff;
    }
  });
}
