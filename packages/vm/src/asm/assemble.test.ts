import { describe, expect, it } from 'vitest';
import { AsmError, assemble, assembleToBytes } from './assemble.js';

/** The bytes of one or more instructions, written as in RFC 9669's figures: opcode, regs, off, imm. */
function insn(op: number, dst: number, src: number, off: number, imm: number): number[] {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  b[0] = op;
  b[1] = (src << 4) | dst;
  dv.setInt16(2, off, true);
  dv.setInt32(4, imm, true);
  return [...b];
}

const bytes = (text: string) => [...assembleToBytes(text)];

// Expected encodings worked out by hand from RFC 9669: opcode = operation | source | class
// (section 3 and tables in 4.1-4.3), regs byte = src << 4 | dst, then off (le16), imm (le32).
describe('assemble: encodings from RFC 9669', () => {
  const cases: [string, number[]][] = [
    // ALU64 (0x07) | MOV (0xb0) | K
    ['mov %r0, 1', insn(0xb7, 0, 0, 0, 1)],
    // ALU (0x04) | ADD (0x00) | X (0x08)
    ['add32 %r1, %r2', insn(0x0c, 1, 2, 0, 0)],
    ['add %r1, -1', insn(0x07, 1, 0, 0, -1)],
    ['add %r2, 0xffffffec', insn(0x07, 2, 0, 0, -20)],
    ['mul32 %r0, -1640531535', insn(0x24, 0, 0, 0, -1640531535)],
    ['arsh32 %r1, %r2', insn(0xcc, 1, 2, 0, 0)],
    ['mod %r3, 1000003', insn(0x97, 3, 0, 0, 1000003)],
    // ALU64 | NEG (0x80)
    ['neg %r1', insn(0x87, 1, 0, 0, 0)],
    ['neg32 %r1', insn(0x84, 1, 0, 0, 0)],
    // Signed division and modulo: offset 1 (RFC 9669 4.1)
    ['sdiv32 %r1, 3', insn(0x34, 1, 0, 1, 3)],
    ['smod %r1, %r2', insn(0x9f, 1, 2, 1, 0)],
    ['sdiv %r0, %r1', insn(0x3f, 0, 1, 1, 0)],
    // MOVSX: MOV | X with the source width in offset
    ['movsx864 %r0, %r1', insn(0xbf, 0, 1, 8, 0)],
    ['movsx1664 %r0, %r1', insn(0xbf, 0, 1, 16, 0)],
    ['movsx3264 %r0, %r1', insn(0xbf, 0, 1, 32, 0)],
    ['movsx832 %r0, %r1', insn(0xbc, 0, 1, 8, 0)],
    ['movsx1632 %r0, %r1', insn(0xbc, 0, 1, 16, 0)],
    // END (0xd0): ALU with TO_LE (0x00) / TO_BE (0x08), ALU64 | TO_LE for bswap; width in imm
    ['be16 %r0', insn(0xdc, 0, 0, 0, 16)],
    ['le32 %r0', insn(0xd4, 0, 0, 0, 32)],
    ['bswap64 %r3', insn(0xd7, 3, 0, 0, 64)],
    // LDX (0x01) | MEM (0x60) | size W (0x00) H (0x08) B (0x10) DW (0x18)
    ['ldxw %r0, [%r1+4]', insn(0x61, 0, 1, 4, 0)],
    ['ldxdw %r0, [%r10-8]', insn(0x79, 0, 10, -8, 0)],
    ['ldxb %r6, [%r2]', insn(0x71, 6, 2, 0, 0)],
    // LDX | MEMSX (0x80)
    ['ldxsb %r0, [%r10-1]', insn(0x91, 0, 10, -1, 0)],
    ['ldxsh %r0, [%r10-2]', insn(0x89, 0, 10, -2, 0)],
    ['ldxsw %r0, [%r10-4]', insn(0x81, 0, 10, -4, 0)],
    // ST (0x02) / STX (0x03) | MEM
    ['stb [%r10-4], 0x01', insn(0x72, 10, 0, -4, 1)],
    ['stxdw [%r10-8], %r1', insn(0x7b, 10, 1, -8, 0)],
    ['stw [%r1+32767], 0x33', insn(0x62, 1, 0, 32767, 0x33)],
    // STX | ATOMIC (0xc0), operation in imm; FETCH = 0x01, XCHG = 0xe1, CMPXCHG = 0xf1
    ['lock add [%r10-8], %r1', insn(0xdb, 10, 1, -8, 0x00)],
    ['lock fetch add32 [%r10-4], %r1', insn(0xc3, 10, 1, -4, 0x01)],
    ['lock or [%r1], %r2', insn(0xdb, 1, 2, 0, 0x40)],
    ['lock fetch and32 [%r1+8], %r2', insn(0xc3, 1, 2, 8, 0x51)],
    ['lock fetch xor [%r1], %r2', insn(0xdb, 1, 2, 0, 0xa1)],
    ['lock xchg [%r10-8], %r1', insn(0xdb, 10, 1, -8, 0xe1)],
    ['lock cmpxchg32 [%r10-8], %r1', insn(0xc3, 10, 1, -8, 0xf1)],
    // LD (0x00) | ABS (0x20) / IND (0x40): legacy packet loads, index register in src
    ['ldabsh 12', insn(0x28, 0, 0, 0, 12)],
    ['ldabsw 0x3e', insn(0x20, 0, 0, 0, 0x3e)],
    ['ldindb %r3, 4', insn(0x50, 0, 3, 0, 4)],
    // JMP (0x05) | JNE (0x50) | K, JMP32 (0x06) | JSGT (0x60) | X
    ['jne %r1, 0, +2', insn(0x55, 1, 0, 2, 0)],
    ['jsgt32 %r1, %r2, -1', insn(0x6e, 1, 2, -1, 0)],
    ['jset %r1, 0x80, +0', insn(0x45, 1, 0, 0, 0x80)],
    ['jslt %r1, -1, +3', insn(0xc5, 1, 0, 3, -1)],
    ['ja +2', insn(0x05, 0, 0, 2, 0)],
    // may_goto: JMP | JCOND (0xe0, include/uapi/linux/bpf.h)
    ['may_goto +3', insn(0xe5, 0, 0, 3, 0)],
    // gotol: JMP32 | JA, offset in imm
    ['ja32 +5', insn(0x06, 0, 0, 0, 5)],
    // CALL (0x80): helper (src 0), bpf-to-bpf (src 1, imm relative), kfunc (src 2), callx (X, register in dst)
    ['call 5', insn(0x85, 0, 0, 0, 5)],
    ['call helper 0x1', insn(0x85, 0, 0, 0, 1)],
    ['call local +3', insn(0x85, 0, 1, 0, 3)],
    ['call runtime 7', insn(0x85, 0, 2, 0, 7)],
    ['call %r2', insn(0x8d, 2, 0, 0, 0)],
    ['exit', insn(0x95, 0, 0, 0, 0)],
  ];
  for (const [text, expected] of cases) {
    it(text, () => expect(bytes(text)).toEqual(expected));
  }

  it('lddw takes two slots, the upper half of the immediate in the second', () => {
    expect(bytes('lddw %r0, 0x1122334455667788')).toEqual([
      ...insn(0x18, 0, 0, 0, 0x55667788),
      ...insn(0x00, 0, 0, 0, 0x11223344),
    ]);
    expect(bytes('lddw %r1, -1')).toEqual([...insn(0x18, 1, 0, 0, -1), ...insn(0, 0, 0, 0, -1)]);
  });

  it('encodes %r11..%r15 so that the validator, not the assembler, rejects them', () => {
    expect(bytes('mov %r11, 1')).toEqual(insn(0xb7, 11, 0, 0, 1));
    expect(bytes('mov %r0, %r11')).toEqual(insn(0xbf, 0, 11, 0, 0));
  });

  it('.raw writes one slot as the little-endian u64 of a -- raw section', () => {
    expect(bytes('.raw 0x00000030000001dc')).toEqual(insn(0xdc, 1, 0, 0, 0x30));
  });
});

describe('assemble: labels, comments, layout', () => {
  it('resolves forward and backward labels to offsets relative to the next instruction', () => {
    const code = assemble(`
      mov %r0, 0
      mov %r1, 10
    loop:
      add %r0, 3          # body
      add %r1, -1
      jne %r1, 0, loop
      ja done
      lddw %r2, 0x100000000
    done:
      exit`);
    expect(code.off[4]).toBe(-3); // jne at pc 4 → loop at pc 2
    expect(code.off[5]).toBe(2); // ja at pc 5 → done at pc 8 (lddw takes 6 and 7)
  });

  it('call local takes a label; ja32 a label into imm', () => {
    const code = assemble('call local f\nja32 f\nexit\nf: mov %r0, 1\nexit');
    expect(code.src[0]).toBe(1);
    expect(code.imm[0]).toBe(2);
    expect(code.imm[1]).toBe(1);
    expect(code.op[1]).toBe(0x06);
  });

  it('lets `exit` name the first exit instruction, as bpf_conformance does', () => {
    const code = assemble('jeq %r1, 0, exit\nmov %r0, 1\nexit');
    expect(code.off[0]).toBe(1);
  });

  it('accepts blanks inside memory references and upper-case mnemonics', () => {
    expect(bytes('LDXW %r0, [ %r1 + 4 ]')).toEqual(insn(0x61, 0, 1, 4, 0));
  });
});

describe('assemble: errors name the file and line', () => {
  const error = (text: string) => {
    try {
      assemble(text, { file: 'prog.data', firstLine: 10 });
    } catch (e) {
      expect(e).toBeInstanceOf(AsmError);
      return (e as Error).message;
    }
    throw new Error('expected an AsmError');
  };

  it('unknown mnemonic', () => expect(error('mov %r0, 1\nfrob %r1')).toBe("prog.data:11: unknown mnemonic 'frob'"));
  it('bad operand', () => expect(error('ldxw %r0, %r1')).toMatch(/^prog\.data:10: bad operand 2 of 'ldxw': expected a memory reference/));
  it('wrong operand count', () => expect(error('exit %r0')).toBe("prog.data:10: 'exit' takes 0 operands, got 1"));
  it('invalid register', () => expect(error('mov %r16, 1')).toMatch(/^prog\.data:10: invalid register '%r16'/));
  it('undefined label', () => expect(error('exit\n\nja nowhere')).toBe("prog.data:12: undefined label 'nowhere'"));
  it('unsigned jump offset', () => expect(error('ja 1')).toMatch(/undefined label '1' \(an offset needs a sign/));
  it('duplicate label', () => expect(error('a:\nexit\na:\nexit')).toBe("prog.data:12: duplicate label 'a' (first defined at line 10)"));
  it('immediate out of range', () => expect(error('mov %r0, 0x100000000')).toMatch(/^prog\.data:10: immediate 4294967296 out of range/));
  it('negative immediate out of range', () => expect(error('mov %r0, -2147483649')).toMatch(/out of range/));
  it('offset out of range', () => expect(error('ldxw %r0, [%r1+32768]')).toMatch(/^prog\.data:10: offset .* out of range/));
  it('jump offset out of range', () => expect(error('ja -32769')).toMatch(/out of range/));
  it('lddw immediate out of range', () => expect(error('lddw %r0, 0x10000000000000000')).toMatch(/out of range/));
  it('bad atomic operation', () => expect(error('lock sub [%r1], %r2')).toMatch(/bad atomic operation 'sub'/));
  it('no sign-extending 64-bit load', () => expect(error('ldxsdw %r0, [%r1]')).toMatch(/unknown mnemonic 'ldxsdw'/));
  it('label too far for a 16-bit offset', () => {
    const text = 'ja far\n' + 'mov %r0, 0\n'.repeat(32768) + 'far: exit';
    expect(() => assemble(text)).toThrow(/out of range for a 16-bit jump offset/);
  });
});
