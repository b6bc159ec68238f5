import { RewindError } from '../errors.js';
// An assembler for the text syntax of uBPF's and bpf_conformance's `.data` test files
// (`mov %r0, 1`, `ldxw %r0, [%r1+4]`, `jne %r1, 0, label`, `lock fetch add32 [%r10-4], %r1`, ...).
// Encodings follow RFC 9669; where the two reference assemblers (uBPF's ubpf/assembler.py and
// bpf_conformance's src/bpf_assembler.cc) differ, the comment says which one is followed.

import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_IND,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  LDDW,
  encode,
  fromInsns,
  type Bytecode,
  type Insn,
} from '../isa.js';

/** A syntax error in assembly text, reported as `<file>:<line>: <what>`. */
export class AsmError extends RewindError {
  override readonly name = 'AsmError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly what: string,
  ) {
    super(`${file}:${line}: ${what}`);
  }
}

export interface AssembleOptions {
  /** File name for error messages; `<asm>` by default. */
  file?: string;
  /** Line number of the text's first line in that file (for asm embedded in a `.data` file); 1 by default. */
  firstLine?: number;
}

export const ALU_OPS: Readonly<Record<string, number>> = {
  add: BPF_ADD,
  sub: BPF_SUB,
  mul: BPF_MUL,
  div: BPF_DIV,
  or: BPF_OR,
  and: BPF_AND,
  lsh: BPF_LSH,
  rsh: BPF_RSH,
  mod: BPF_MOD,
  xor: BPF_XOR,
  mov: BPF_MOV,
  arsh: BPF_ARSH,
};

export const JMP_OPS: Readonly<Record<string, number>> = {
  jeq: BPF_JEQ,
  jgt: BPF_JGT,
  jge: BPF_JGE,
  jset: BPF_JSET,
  jne: BPF_JNE,
  jsgt: BPF_JSGT,
  jsge: BPF_JSGE,
  jlt: BPF_JLT,
  jle: BPF_JLE,
  jslt: BPF_JSLT,
  jsle: BPF_JSLE,
};

export const SIZE_SUFFIX: Readonly<Record<string, number>> = { b: BPF_B, h: BPF_H, w: BPF_W, dw: BPF_DW };

/** Atomic operations by mnemonic (the `imm` of BPF_STX | BPF_ATOMIC, without BPF_FETCH). */
export const ATOMIC_OPS: Readonly<Record<string, number>> = {
  add: BPF_ADD,
  or: BPF_OR,
  and: BPF_AND,
  xor: BPF_XOR,
  xchg: BPF_XCHG,
  cmpxchg: BPF_CMPXCHG,
};

/** BPF_JMP | BPF_JCOND with src BPF_MAY_GOTO is may_goto (include/uapi/linux/bpf.h, Linux 6.9+). */
const BPF_JCOND = 0xe0;

const INT32_MIN = -(2n ** 31n);
const UINT32_MAX = 2n ** 32n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

type Operand =
  | { kind: 'reg'; reg: number }
  | { kind: 'imm'; value: bigint; signed: boolean }
  | { kind: 'mem'; reg: number; off: number }
  | { kind: 'word'; word: string };

/** A jump or call whose target is a label, resolved once all labels are known. */
interface Fixup {
  pc: number;
  label: string;
  line: number;
  /** Which field takes the relative offset. */
  field: 'off' | 'imm';
}

const NUMBER = /^[+-]?(?:0x[0-9a-f]+|\d+)$/i;
const LABEL = /^[A-Za-z0-9_.$]+$/;

/** Assembles `.data`-style assembly into bytecode. Throws AsmError naming the file and line. */
export function assemble(text: string, opts: AssembleOptions = {}): Bytecode {
  return new Assembler(opts.file ?? '<asm>', opts.firstLine ?? 1).run(text);
}

/** Assembles to little-endian bytes, the layout `-- raw` sections and the kernel use. */
export function assembleToBytes(text: string, opts: AssembleOptions = {}): Uint8Array {
  return encode(assemble(text, opts));
}

class Assembler {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, { pc: number; line: number }>();
  private readonly fixups: Fixup[] = [];
  /** bpf_conformance lets `exit` name the first exit instruction when no label of that name exists. */
  private firstExit: number | undefined;
  private line = 0;

  constructor(
    private readonly file: string,
    private readonly firstLine: number,
  ) {}

  run(text: string): Bytecode {
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      this.line = this.firstLine + i;
      this.statement(lines[i]!);
    }
    for (const f of this.fixups) this.resolve(f);
    return fromInsns(this.insns);
  }

  private fail(what: string, line = this.line): never {
    throw new AsmError(this.file, line, what);
  }

  private statement(raw: string): void {
    let text = raw;
    const hash = text.indexOf('#');
    if (hash >= 0) text = text.slice(0, hash);
    text = text.trim().replace(/;$/, '').trim();
    // `name:` defines a label, optionally followed by an instruction on the same line.
    const label = /^([A-Za-z0-9_.$]+):\s*(.*)$/.exec(text);
    if (label) {
      const name = label[1]!;
      const prev = this.labels.get(name);
      if (prev) this.fail(`duplicate label '${name}' (first defined at line ${prev.line})`);
      this.labels.set(name, { pc: this.insns.length, line: this.line });
      text = label[2]!;
    }
    if (text === '') return;
    const space = text.search(/\s/);
    const mnemonic = (space < 0 ? text : text.slice(0, space)).toLowerCase();
    const rest = space < 0 ? '' : text.slice(space + 1);
    const operands = this.operands(rest);
    this.instruction(mnemonic, operands);
  }

  /** Splits operands on commas and blanks; blanks inside `[...]` belong to the memory reference. */
  private operands(rest: string): Operand[] {
    const normalized = rest.replace(/\[[^\]]*\]/g, (m) => m.replace(/\s+/g, ''));
    const tokens = normalized.split(/[\s,]+/).filter((t) => t !== '');
    return tokens.map((t) => this.operand(t));
  }

  private operand(tok: string): Operand {
    if (tok.startsWith('%')) return { kind: 'reg', reg: this.register(tok) };
    if (tok.startsWith('[')) {
      const m = /^\[(%[^+\-\]]+)(?:([+-])(0x[0-9a-f]+|\d+))?\]$/i.exec(tok);
      if (!m) this.fail(`bad memory operand '${tok}': expected [%rN], [%rN+off] or [%rN-off]`);
      const reg = this.register(m[1]!);
      let off = 0;
      if (m[3] !== undefined) {
        const v = BigInt(m[3]) * (m[2] === '-' ? -1n : 1n);
        off = this.offset16(v, tok);
      }
      return { kind: 'mem', reg, off };
    }
    if (NUMBER.test(tok)) {
      const neg = tok.startsWith('-');
      const digits = tok.replace(/^[+-]/, '');
      const v = BigInt(digits);
      return { kind: 'imm', value: neg ? -v : v, signed: /^[+-]/.test(tok) };
    }
    if (LABEL.test(tok)) return { kind: 'word', word: tok };
    this.fail(`bad operand '${tok}'`);
  }

  private register(tok: string): number {
    // %r11..%r15 are accepted, as bpf_conformance does, so that validators can be tested on them.
    const m = /^%r(\d+)$/i.exec(tok);
    if (!m || Number(m[1]) > 15) this.fail(`invalid register '${tok}': expected %r0..%r10 (or %r11..%r15, which only a validator rejects)`);
    return Number(m[1]);
  }

  private offset16(v: bigint, what: string): number {
    if (v < -32768n || v > 32767n) this.fail(`offset ${what} out of range: must fit in 16 signed bits (-32768..32767)`);
    return Number(v);
  }

  /** A 32-bit immediate, accepted signed or unsigned (0xffffffff == -1), as both reference assemblers do. */
  private imm32(v: bigint, what: string): number {
    if (v < INT32_MIN || v > UINT32_MAX) this.fail(`immediate ${what} out of range: must fit in 32 bits`);
    return Number(BigInt.asIntN(32, v));
  }

  private expect(mnemonic: string, ops: Operand[], kinds: Operand['kind'][][]): void {
    if (ops.length !== kinds.length) {
      this.fail(`'${mnemonic}' takes ${kinds.length} operand${kinds.length === 1 ? '' : 's'}, got ${ops.length}`);
    }
    ops.forEach((op, i) => {
      const allowed = kinds[i]!;
      if (!allowed.includes(op.kind)) {
        this.fail(`bad operand ${i + 1} of '${mnemonic}': expected ${allowed.map(describe).join(' or ')}, got ${show(op)}`);
      }
    });
  }

  private emit(op: number, dst: number, src: number, off: number, imm: number): number {
    this.insns.push({ op, dst, src, off, imm });
    return this.insns.length - 1;
  }

  /** A jump target: `+N`/`-N` is an offset, anything else names a label. */
  private target(mnemonic: string, op: Operand, field: 'off' | 'imm'): number {
    if (op.kind === 'imm' && op.signed) {
      return field === 'off' ? this.offset16(op.value, String(op.value)) : this.imm32(op.value, String(op.value));
    }
    if (op.kind === 'word' || op.kind === 'imm') {
      const label = op.kind === 'word' ? op.word : String(op.value);
      this.fixups.push({ pc: this.insns.length, label, line: this.line, field });
      return 0;
    }
    this.fail(`bad target of '${mnemonic}': expected +N, -N or a label, got ${show(op)}`);
  }

  private resolve(f: Fixup): void {
    const pc = this.labels.get(f.label)?.pc ?? (f.label === 'exit' ? this.firstExit : undefined);
    if (pc === undefined) {
      const hint = /^\d+$/.test(f.label) ? ' (an offset needs a sign: +N or -N)' : '';
      this.fail(`undefined label '${f.label}'${hint}`, f.line);
    }
    const rel = pc - f.pc - 1;
    if (f.field === 'off' && (rel < -32768 || rel > 32767)) {
      this.fail(`label '${f.label}' is ${rel} instructions away: out of range for a 16-bit jump offset (use ja32)`, f.line);
    }
    this.insns[f.pc]![f.field] = rel;
  }

  private instruction(m: string, ops: Operand[]): void {
    const R: Operand['kind'][] = ['reg'];
    const I: Operand['kind'][] = ['imm'];
    const RI: Operand['kind'][] = ['reg', 'imm'];
    const M: Operand['kind'][] = ['mem'];
    const T: Operand['kind'][] = ['imm', 'word'];
    const reg = (i: number) => (ops[i] as { reg: number }).reg;
    const mem = (i: number) => ops[i] as { reg: number; off: number };
    const imm = (i: number) => this.imm32((ops[i] as { value: bigint }).value, String((ops[i] as { value: bigint }).value));
    let match: RegExpExecArray | null;

    // ALU: add %r1, %r2 | add32 %r1, 5 | sdiv/smod (offset 1 selects the signed form, RFC 9669 4.1).
    if ((match = /^(s?)(add|sub|mul|div|or|and|lsh|rsh|mod|xor|mov|arsh)(32)?$/.exec(m))) {
      const [, signed, name, is32] = match;
      if (signed && name !== 'div' && name !== 'mod') this.fail(`unknown mnemonic '${m}'`);
      const cls = is32 ? BPF_ALU : BPF_ALU64;
      this.expect(m, ops, [R, RI]);
      const off = signed ? 1 : 0;
      const code = cls | ALU_OPS[name!]!;
      if (ops[1]!.kind === 'reg') this.emit(code | BPF_X, reg(0), reg(1), off, 0);
      else this.emit(code | BPF_K, reg(0), 0, off, imm(1));
      return;
    }
    if (m === 'neg' || m === 'neg32') {
      this.expect(m, ops, [R]);
      this.emit((m === 'neg' ? BPF_ALU64 : BPF_ALU) | BPF_NEG | BPF_K, reg(0), 0, 0, 0);
      return;
    }
    // movsx<from><to>: sign-extending move, the source width in the offset field.
    if ((match = /^movsx(8|16|32)(32|64)$/.exec(m))) {
      const from = Number(match[1]);
      const to = Number(match[2]);
      if (from >= to) this.fail(`unknown mnemonic '${m}': movsx needs a source narrower than the result`);
      this.expect(m, ops, [R, R]);
      this.emit((to === 64 ? BPF_ALU64 : BPF_ALU) | BPF_MOV | BPF_X, reg(0), reg(1), from, 0);
      return;
    }
    // Byte swaps: le/be are BPF_ALU | BPF_END with the direction in the source bit; bswap is BPF_ALU64.
    if ((match = /^(le|be|bswap|swap)(16|32|64)$/.exec(m))) {
      const [, kind, width] = match;
      this.expect(m, ops, [R]);
      const code =
        kind === 'le' ? BPF_ALU | BPF_END | BPF_TO_LE : kind === 'be' ? BPF_ALU | BPF_END | BPF_TO_BE : BPF_ALU64 | BPF_END | BPF_TO_LE;
      this.emit(code, reg(0), 0, 0, Number(width));
      return;
    }

    // Memory.
    if ((match = /^ldx(s?)(b|h|w|dw)$/.exec(m))) {
      const [, sx, size] = match;
      if (sx && size === 'dw') this.fail(`unknown mnemonic '${m}': there is no sign-extending 64-bit load`);
      this.expect(m, ops, [R, M]);
      this.emit(BPF_LDX | (sx ? BPF_MEMSX : BPF_MEM) | SIZE_SUFFIX[size!]!, reg(0), mem(1).reg, mem(1).off, 0);
      return;
    }
    if ((match = /^st(x?)(b|h|w|dw)$/.exec(m))) {
      const [, x, size] = match;
      if (x) {
        this.expect(m, ops, [M, R]);
        this.emit(BPF_STX | BPF_MEM | SIZE_SUFFIX[size!]!, mem(0).reg, reg(1), mem(0).off, 0);
      } else {
        this.expect(m, ops, [M, I]);
        this.emit(BPF_ST | BPF_MEM | SIZE_SUFFIX[size!]!, mem(0).reg, 0, mem(0).off, imm(1));
      }
      return;
    }
    if (m === 'lddw') {
      this.expect(m, ops, [R, I]);
      const v = (ops[1] as { value: bigint }).value;
      if (v < INT64_MIN || v > UINT64_MAX) this.fail(`immediate ${v} out of range: must fit in 64 bits`);
      const u = BigInt.asUintN(64, v);
      this.emit(LDDW, reg(0), 0, 0, Number(BigInt.asIntN(32, u)));
      this.emit(0, 0, 0, 0, Number(BigInt.asIntN(32, u >> 32n)));
      return;
    }
    // Legacy packet loads (GNU as spelling: `ldabsw 0x3e`, `ldindw %r3, 0x3e`); the index register is src.
    if ((match = /^ld(abs|ind)(b|h|w|dw)$/.exec(m))) {
      const [, mode, size] = match;
      if (mode === 'abs') {
        this.expect(m, ops, [I]);
        this.emit(BPF_LD | BPF_ABS | SIZE_SUFFIX[size!]!, 0, 0, 0, imm(0));
      } else {
        this.expect(m, ops, [R, I]);
        this.emit(BPF_LD | BPF_IND | SIZE_SUFFIX[size!]!, 0, reg(0), 0, imm(1));
      }
      return;
    }
    // lock [fetch] <op>[32] [%rD+off], %rS. xchg and cmpxchg always fetch.
    if (m === 'lock') {
      const words = ops.filter((o) => o.kind === 'word') as { word: string }[];
      const fetch = words.length === 2 && words[0]!.word.toLowerCase() === 'fetch';
      const opWord = words[words.length - 1]?.word.toLowerCase() ?? '';
      const am = /^(add|or|and|xor|xchg|cmpxchg)(32)?$/.exec(opWord);
      if (!am || words.length > 2 || (words.length === 2 && !fetch)) {
        this.fail(`bad atomic operation '${words.map((w) => w.word).join(' ')}': expected lock [fetch] add|or|and|xor|xchg|cmpxchg[32]`);
      }
      const rest = ops.slice(words.length);
      this.expect(`lock ${words.map((w) => w.word).join(' ')}`, rest, [M, R]);
      const name = am[1]!;
      let aimm = ATOMIC_OPS[name]!;
      if (fetch) aimm |= BPF_FETCH;
      const dst = rest[0] as { reg: number; off: number };
      this.emit(BPF_STX | BPF_ATOMIC | (am[2] ? BPF_W : BPF_DW), dst.reg, (rest[1] as { reg: number }).reg, dst.off, aimm);
      return;
    }

    // Jumps.
    if ((match = /^(j[a-z]+?)(32)?$/.exec(m)) && JMP_OPS[match[1]!] !== undefined) {
      const code = (match[2] ? BPF_JMP32 : BPF_JMP) | JMP_OPS[match[1]!]!;
      this.expect(m, ops, [R, RI, T]);
      const off = this.target(m, ops[2]!, 'off');
      if (ops[1]!.kind === 'reg') this.emit(code | BPF_X, reg(0), reg(1), off, 0);
      else this.emit(code | BPF_K, reg(0), 0, off, imm(1));
      return;
    }
    if (m === 'ja') {
      this.expect(m, ops, [T]);
      this.emit(BPF_JMP | BPF_JA, 0, 0, this.target(m, ops[0]!, 'off'), 0);
      return;
    }
    if (m === 'may_goto') {
      this.expect(m, ops, [T]);
      this.emit(BPF_JMP | BPF_JCOND, 0, 0, this.target(m, ops[0]!, 'off'), 0);
      return;
    }
    // gotol: BPF_JMP32 | BPF_JA with the offset in imm (RFC 9669 4.3.2).
    if (m === 'ja32') {
      this.expect(m, ops, [T]);
      this.emit(BPF_JMP32 | BPF_JA, 0, 0, 0, this.target(m, ops[0]!, 'imm'));
      return;
    }
    if (m === 'call' || m === 'callx') return this.call(m, ops);
    if (m === 'exit') {
      this.expect(m, ops, []);
      const pc = this.emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
      this.firstExit ??= pc;
      return;
    }
    // `.raw 0x00000030000001dc`: one slot as the little-endian u64 a `-- raw` section holds, for
    // encodings the mnemonics cannot express (pseudo lddw sources, unused fields set, bad opcodes).
    if (m === '.raw') {
      this.expect(m, ops, [I]);
      const v = (ops[0] as { value: bigint }).value;
      if (v < 0n || v > UINT64_MAX) this.fail(`raw instruction ${v} out of range: must be an unsigned 64-bit number`);
      const regs = Number((v >> 8n) & 0xffn);
      this.emit(
        Number(v & 0xffn),
        regs & 0x0f,
        regs >> 4,
        Number(BigInt.asIntN(16, (v >> 16n) & 0xffffn)),
        Number(BigInt.asIntN(32, v >> 32n)),
      );
      return;
    }
    this.fail(`unknown mnemonic '${m}'`);
  }

  /**
   * call N | call helper N (helper by id), call local <label|±N> (bpf-to-bpf, src 1, imm relative),
   * call runtime N (src 2, kfunc), call %rN (callx: BPF_JMP | BPF_CALL | BPF_X with the register in
   * dst, as bpf_conformance and LLVM encode it).
   */
  private call(m: string, ops: Operand[]): void {
    const first = ops[0];
    const mode = first?.kind === 'word' && ['helper', 'local', 'runtime'].includes(first.word.toLowerCase()) ? first.word.toLowerCase() : undefined;
    const rest = mode ? ops.slice(1) : ops;
    const shown = mode ? `call ${mode}` : m;
    if (m === 'callx' || (!mode && rest[0]?.kind === 'reg')) {
      this.expect(shown, rest, [['reg']]);
      this.emit(BPF_JMP | BPF_CALL | BPF_X, (rest[0] as { reg: number }).reg, 0, 0, 0);
      return;
    }
    if (mode === 'local') {
      this.expect(shown, rest, [['imm', 'word']]);
      const t = rest[0]!;
      // uBPF also accepts an unsigned number here; it is a relative offset like ±N.
      const target = t.kind === 'imm' ? this.imm32(t.value, String(t.value)) : this.target(shown, t, 'imm');
      this.emit(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, target);
      return;
    }
    this.expect(shown, rest, [['imm']]);
    const id = this.imm32((rest[0] as { value: bigint }).value, String((rest[0] as { value: bigint }).value));
    this.emit(BPF_JMP | BPF_CALL, 0, mode === 'runtime' ? BPF_PSEUDO_KFUNC_CALL : 0, 0, id);
  }
}

function describe(kind: Operand['kind']): string {
  switch (kind) {
    case 'reg':
      return 'a register';
    case 'imm':
      return 'a number';
    case 'mem':
      return 'a memory reference [%rN+off]';
    case 'word':
      return 'a label';
  }
}

function show(op: Operand): string {
  switch (op.kind) {
    case 'reg':
      return `%r${op.reg}`;
    case 'imm':
      return String(op.value);
    case 'mem':
      return `[%r${op.reg}${op.off < 0 ? op.off : `+${op.off}`}]`;
    case 'word':
      return `'${op.word}'`;
  }
}
