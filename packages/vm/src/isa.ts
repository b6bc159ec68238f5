// The eBPF instruction encoding, RFC 9669 section 3 and 4, plus the Linux kernel's
// pseudo sources. Names follow the kernel's (BPF_ALU64, BPF_JMP32, BPF_ATOMIC, ...) so a
// reader can go from here to the RFC and to include/uapi/linux/bpf.h without a glossary.

// Instruction classes (the low three bits of the opcode).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;

// Source operand bit for ALU and JMP classes.
export const BPF_K = 0x00;
export const BPF_X = 0x08;

// ALU operations (opcode & 0xf0).
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
export const BPF_MOV = 0xb0;
export const BPF_ARSH = 0xc0;
export const BPF_END = 0xd0;

// Byte swap direction, in the source bit of BPF_ALU | BPF_END.
export const BPF_TO_LE = 0x00;
export const BPF_TO_BE = 0x08;

// Jump operations (opcode & 0xf0).
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
export const BPF_JNE = 0x50;
export const BPF_JSGT = 0x60;
export const BPF_JSGE = 0x70;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
export const BPF_JLT = 0xa0;
export const BPF_JLE = 0xb0;
export const BPF_JSLT = 0xc0;
export const BPF_JSLE = 0xd0;

// Load/store sizes (opcode & 0x18).
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;

// Load/store modes (opcode & 0xe0).
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_MEMSX = 0x80;
export const BPF_ATOMIC = 0xc0;

// Atomic operations, in the imm field of BPF_STX | BPF_ATOMIC.
export const BPF_FETCH = 0x01;
export const BPF_XCHG = 0xe0 | BPF_FETCH;
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;

// src_reg of BPF_LD | BPF_IMM | BPF_DW (lddw): how the loader resolves the 64-bit immediate.
export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_BTF_ID = 3;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5;
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;

// src_reg of BPF_JMP | BPF_CALL.
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;

export const MAX_BPF_STACK = 512;
export const MAX_CALL_FRAMES = 8;
/** The kernel's BPF_COMPLEXITY_LIMIT_INSNS: the most instructions a program may have. */
export const BPF_MAXINSNS = 1_000_000;

export const cls = (op: number): number => op & 0x07;
export const aluOp = (op: number): number => op & 0xf0;
export const jmpOp = (op: number): number => op & 0xf0;
export const srcBit = (op: number): number => op & 0x08;
export const memSize = (op: number): number => op & 0x18;
export const memMode = (op: number): number => op & 0xe0;
export const sizeBytes = (op: number): 1 | 2 | 4 | 8 => {
  switch (op & 0x18) {
    case BPF_B:
      return 1;
    case BPF_H:
      return 2;
    case BPF_W:
      return 4;
    default:
      return 8;
  }
};

/** lddw (BPF_LD | BPF_IMM | BPF_DW) is the only instruction that takes two slots. */
export const LDDW = BPF_LD | BPF_IMM | BPF_DW;

/**
 * A program's bytecode, decoded into parallel arrays indexed by slot (pc). A pc counts
 * 8-byte slots, as llvm-objdump numbers them: lddw takes two, and its second slot holds
 * the upper 32 bits of the immediate in `imm`.
 */
export interface Bytecode {
  readonly length: number;
  readonly op: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly off: Int16Array;
  readonly imm: Int32Array;
}

/** Decodes little-endian eBPF bytecode (the layout the kernel and clang use on x86). */
export function decode(bytes: Uint8Array): Bytecode {
  if (bytes.length % 8 !== 0) {
    throw new RangeError(`bytecode length ${bytes.length} is not a multiple of 8`);
  }
  const n = bytes.length / 8;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const op = new Uint8Array(n);
  const dst = new Uint8Array(n);
  const src = new Uint8Array(n);
  const off = new Int16Array(n);
  const imm = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const b = i * 8;
    op[i] = bytes[b]!;
    const regs = bytes[b + 1]!;
    dst[i] = regs & 0x0f;
    src[i] = regs >> 4;
    off[i] = dv.getInt16(b + 2, true);
    imm[i] = dv.getInt32(b + 4, true);
  }
  return { length: n, op, dst, src, off, imm };
}

/** Encodes decoded bytecode back into little-endian bytes. */
export function encode(code: Bytecode): Uint8Array {
  const out = new Uint8Array(code.length * 8);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < code.length; i++) {
    const b = i * 8;
    out[b] = code.op[i]!;
    out[b + 1] = (code.dst[i]! & 0x0f) | ((code.src[i]! & 0x0f) << 4);
    dv.setInt16(b + 2, code.off[i]!, true);
    dv.setInt32(b + 4, code.imm[i]!, true);
  }
  return out;
}

/** One instruction as plain data, for builders and tests. */
export interface Insn {
  op: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

export function fromInsns(insns: readonly Insn[]): Bytecode {
  const n = insns.length;
  const code = {
    length: n,
    op: new Uint8Array(n),
    dst: new Uint8Array(n),
    src: new Uint8Array(n),
    off: new Int16Array(n),
    imm: new Int32Array(n),
  };
  insns.forEach((insn, i) => {
    code.op[i] = insn.op;
    code.dst[i] = insn.dst;
    code.src[i] = insn.src;
    code.off[i] = insn.off;
    code.imm[i] = insn.imm;
  });
  return code;
}

export function insnAt(code: Bytecode, pc: number): Insn {
  return { op: code.op[pc]!, dst: code.dst[pc]!, src: code.src[pc]!, off: code.off[pc]!, imm: code.imm[pc]! };
}
