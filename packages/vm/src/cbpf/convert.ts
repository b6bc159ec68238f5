// Classic BPF to eBPF, as the kernel's bpf_convert_filter() (net/core/filter.c) did up to
// Linux 4.17, while it still kept packet loads as eBPF LD_ABS/LD_IND (4.18 began lowering
// them to inline code and helper calls). Register mapping (include/linux/filter.h):
//   A → r0, X → r7, ctx (the skb) → r6, scratch → r8, M[k] → the 32-bit stack slot at r10 - (4k + 4).
//
// Three deliberate differences from the kernel's output, none changing what a program computes:
//  - Loads of skb fields (`ld len`, ancillary loads) read `struct __sk_buff`, the uapi view
//    a VM can implement, at the offsets in CBPF_SK_BUFF below, instead of the kernel-internal
//    `struct sk_buff`. Where a value is the same either way the load is one LDX_MEM(W);
//    protocol and vlan_proto stay in network order in __sk_buff, hence a be16 after them.
//  - Fields an instruction does not use are zero (the kernel copies k and X into every
//    mapped instruction), so the output also passes the verifier's reserved-field checks.
//  - The prologue zeroes A and X with `mov r, 0` where the kernel has `r ^= r`: the verifier,
//    which never sees the kernel's converted filters, rejects that read of an unset register.

import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_B,
  BPF_CALL,
  BPF_DIV,
  BPF_END,
  BPF_EXIT,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JNE,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_W,
  BPF_X,
  BPF_XOR,
  fromInsns,
  type Bytecode,
  type Insn,
} from '../isa.js';
import { checkClassic } from './check.js';
import { BPF_A, BPF_LEN, BPF_MISC, BPF_MSH, BPF_RET, BPF_TAX, BPF_TXA, CbpfError, SKF_AD, ancillaryName, formatCbpfInsn, type CbpfInsn } from './insn.js';

const BPF_REG_A = 0;
const BPF_REG_CTX = 6;
const BPF_REG_X = 7;
/** Scratch register; r8 because LD_ABS/LD_IND clobber r1-r5 like a call (v4.17's BPF_REG_TMP). */
const BPF_REG_TMP = 8;
const BPF_REG_FP = 10;

/**
 * Offsets in `struct __sk_buff` (include/uapi/linux/bpf.h) that translated programs read;
 * each field is a __u32. A VM running them lays out the skb context this way.
 */
export const CBPF_SK_BUFF = {
  len: 0,
  pkt_type: 4,
  mark: 8,
  queue_mapping: 12,
  /** Network byte order in the low 16 bits, as the verifier's ctx rewrite loads skb->protocol. */
  protocol: 16,
  vlan_present: 20,
  vlan_tci: 24,
  /** Network byte order, like protocol. */
  vlan_proto: 28,
  ifindex: 40,
  hash: 68,
} as const;

/** Helper ids (enum bpf_func_id) standing in for the kernel-internal calls of SKF_AD_CPU and SKF_AD_RANDOM. */
const BPF_FUNC_get_prandom_u32 = 7;
const BPF_FUNC_get_smp_processor_id = 8;

export interface CbpfTranslation {
  code: Bytecode;
  /** For each eBPF pc, the classic instruction it came from; -1 for the prologue. */
  origin: Int32Array;
  /** Stack bytes the scratch memory uses (the kernel's aux->stack_depth). */
  stackDepth: number;
}

/** An eBPF instruction whose jump offset is still a classic instruction index. */
interface Pending extends Insn {
  target?: number;
}

const ins = (op: number, dst: number, src: number, off: number, imm: number): Pending => ({ op, dst, src, off, imm });
const mov64Reg = (dst: number, src: number): Pending => ins(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
const mov32Imm = (dst: number, imm: number): Pending => ins(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm | 0);
const alu32Imm = (op: number, dst: number, imm: number): Pending => ins(BPF_ALU | op | BPF_K, dst, 0, 0, imm | 0);
const ldxW = (dst: number, src: number, off: number): Pending => ins(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
const exit = (): Pending => ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
const be16 = (dst: number): Pending => ins(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 16);

/** Validates `insns` like bpf_check_classic() and translates them; see the file comment for the mapping. */
export function convertCbpf(insns: readonly CbpfInsn[], file = 'cBPF'): CbpfTranslation {
  checkClassic(insns, file);
  const pieces = insns.map((insn, i) => translate(insn, i, file));
  // addrs[i]: where classic instruction i starts, after the three-instruction prologue.
  const addrs = new Int32Array(insns.length);
  let pc = 3;
  pieces.forEach((p, i) => {
    addrs[i] = pc;
    pc += p.length;
  });
  const out: Insn[] = [
    // Classic BPF starts with A and X zero; ctx must live in a callee-saved register.
    ins(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_A, 0, 0, 0),
    ins(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_X, 0, 0, 0),
    mov64Reg(BPF_REG_CTX, 1),
  ];
  const origin = new Int32Array(pc).fill(-1);
  let stackDepth = 0;
  pieces.forEach((p, i) => {
    p.forEach((e, j) => {
      const at = addrs[i]! + j;
      origin[at] = i;
      if (e.target !== undefined) {
        const off = addrs[e.target]! - at - 1;
        if (off > 0x7fff) throw new CbpfError(`${file}: instruction ${i}: jump offset ${off} does not fit eBPF's 16 bits`, i);
        out.push({ op: e.op, dst: e.dst, src: e.src, off, imm: e.imm });
      } else out.push({ op: e.op, dst: e.dst, src: e.src, off: e.off, imm: e.imm });
    });
    const { code, k } = insns[i]!;
    if (code === BPF_ST || code === BPF_STX) stackDepth = Math.max(stackDepth, 4 * k + 4);
  });
  return { code: fromInsns(out), origin, stackDepth };
}

/** Translates classic BPF to eBPF bytecode; convertCbpf() also gives the pc mapping. */
export function cbpfToEbpf(insns: readonly CbpfInsn[], file?: string): Bytecode {
  return convertCbpf(insns, file).code;
}

function translate(insn: CbpfInsn, i: number, file: string): Pending[] {
  const { code, jt, jf, k } = insn;
  const cls = code & 0x07;
  const A = BPF_REG_A;
  const X = BPF_REG_X;
  switch (cls) {
    case BPF_ALU: {
      if (code === (BPF_ALU | BPF_NEG)) return [ins(code, A, 0, 0, 0)];
      if ((code & BPF_X) === 0) return [alu32Imm(code & 0xf0, A, k)];
      const op = code & 0xf0;
      const guard =
        op === BPF_DIV || op === BPF_MOD
          ? [
              // cBPF division by zero returns 0 from the filter.
              ins(BPF_ALU | BPF_MOV | BPF_X, X, X, 0, 0),
              ins(BPF_JMP | BPF_JNE | BPF_K, X, 0, 2, 0),
              ins(BPF_ALU | BPF_XOR | BPF_X, A, A, 0, 0),
              exit(),
            ]
          : [];
      return [...guard, ins(code, A, X, 0, 0)];
    }
    case BPF_LD:
    case BPF_LDX: {
      const dst = cls === BPF_LD ? A : X;
      const mode = code & 0xe0;
      if (mode === BPF_ABS) {
        const ad = ancillaryName(k);
        if (ad) return ancillary(ad, insn, i, file);
        return [ins(code, 0, 0, 0, k | 0)];
      }
      if (mode === BPF_IND) return [ins(code, 0, X, 0, k | 0)];
      if (mode === BPF_IMM) return [mov32Imm(dst, k)];
      if (mode === BPF_MEM) return [ldxW(dst, BPF_REG_FP, -(4 * k + 4))];
      if (mode === BPF_LEN) return [ldxW(dst, BPF_REG_CTX, CBPF_SK_BUFF.len)];
      if (code === (BPF_LDX | BPF_B | BPF_MSH)) {
        // X = 4 * (P[k] & 0xf), through A: LD_ABS only loads into r0.
        return [
          mov64Reg(BPF_REG_TMP, A),
          ins(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, k | 0),
          alu32Imm(BPF_AND, A, 0xf),
          alu32Imm(BPF_LSH, A, 2),
          mov64Reg(X, A),
          mov64Reg(A, BPF_REG_TMP),
        ];
      }
      break;
    }
    case BPF_ST:
    case BPF_STX:
      return [ins(BPF_STX | BPF_MEM | BPF_W, BPF_REG_FP, cls === BPF_ST ? A : X, -(4 * k + 4), 0)];
    case BPF_JMP: {
      const op = code & 0xf0;
      if (op === BPF_JA) return [{ ...ins(BPF_JMP | BPF_JA, 0, 0, 0, 0), target: i + 1 + k }];
      const out: Pending[] = [];
      let src = 0;
      let imm = k | 0;
      let srcBit = code & BPF_X;
      if (srcBit === BPF_K && (k | 0) < 0) {
        // eBPF sign-extends imm to 64 bits; compare with the zero-extended constant in a register.
        out.push(mov32Imm(BPF_REG_TMP, k));
        src = BPF_REG_TMP;
        imm = 0;
        srcBit = BPF_X;
      } else if (srcBit === BPF_X) {
        src = X;
        imm = 0;
      }
      const jump = (jop: number, target: number): Pending => ({ ...ins(BPF_JMP | jop | srcBit, A, src, 0, imm), target });
      if (jf === 0) return [...out, jump(op, i + 1 + jt)];
      // When the true branch falls through, invert the test and jump on false.
      const inverse = op === BPF_JEQ ? BPF_JNE : op === BPF_JGT ? BPF_JLE : op === BPF_JGE ? BPF_JLT : undefined;
      if (jt === 0 && inverse !== undefined) return [...out, jump(inverse, i + 1 + jf)];
      return [...out, jump(op, i + 1 + jt), { ...ins(BPF_JMP | BPF_JA, 0, 0, 0, 0), target: i + 1 + jf }];
    }
    case BPF_RET:
      return (code & 0x18) === BPF_A ? [exit()] : [mov32Imm(A, k), exit()];
    case BPF_MISC:
      return (code & 0xf8) === BPF_TAX ? [mov64Reg(X, A)] : [mov64Reg(A, X)];
  }
  // checkClassic() admits no other opcode.
  throw new CbpfError(`${file}: instruction ${i} (${formatCbpfInsn(insn, i)}): opcode 0x${code.toString(16)} has no translation`, i);
}

/** convert_bpf_extensions(): ancillary loads become reads of the skb context or helper calls. */
function ancillary(ad: keyof typeof SKF_AD, insn: CbpfInsn, i: number, file: string): Pending[] {
  const A = BPF_REG_A;
  const ctx = BPF_REG_CTX;
  switch (ad) {
    case 'PROTOCOL':
      return [ldxW(A, ctx, CBPF_SK_BUFF.protocol), be16(A)];
    case 'VLAN_TPID':
      return [ldxW(A, ctx, CBPF_SK_BUFF.vlan_proto), be16(A)];
    case 'PKTTYPE':
      return [ldxW(A, ctx, CBPF_SK_BUFF.pkt_type)];
    case 'IFINDEX':
      return [ldxW(A, ctx, CBPF_SK_BUFF.ifindex)];
    case 'MARK':
      return [ldxW(A, ctx, CBPF_SK_BUFF.mark)];
    case 'QUEUE':
      return [ldxW(A, ctx, CBPF_SK_BUFF.queue_mapping)];
    case 'RXHASH':
      return [ldxW(A, ctx, CBPF_SK_BUFF.hash)];
    case 'VLAN_TAG':
      return [ldxW(A, ctx, CBPF_SK_BUFF.vlan_tci)];
    case 'VLAN_TAG_PRESENT':
      return [ldxW(A, ctx, CBPF_SK_BUFF.vlan_present)];
    case 'ALU_XOR_X':
      return [ins(BPF_ALU | BPF_XOR | BPF_X, A, BPF_REG_X, 0, 0)];
    case 'CPU':
    case 'RANDOM':
      // The kernel passes (ctx, A, X) to its internal function; the helpers ignore them.
      return [
        mov64Reg(1, ctx),
        mov64Reg(2, A),
        mov64Reg(3, BPF_REG_X),
        ins(BPF_JMP | BPF_CALL, 0, 0, 0, ad === 'CPU' ? BPF_FUNC_get_smp_processor_id : BPF_FUNC_get_prandom_u32),
      ];
    default:
      // HATYPE needs skb->dev->type and PAY_OFFSET/NLATTR/NLATTR_NEST kernel-internal
      // functions; neither has a __sk_buff field or a helper to stand in.
      throw new CbpfError(`${file}: instruction ${i} (${formatCbpfInsn(insn, i)}): ancillary load SKF_AD_${ad} is not supported`, i);
  }
}
