// Malformed objects, made by mutating a valid clang object the way uBPF's elf tests
// (../bpf-tests/ubpf/elf/*.data) mutate theirs: each must fail with an ElfError that
// says what is wrong and where.

import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { BtfError } from '../btf/btf.js';
import { ElfError, type ElfFile, parseElf } from './elf.js';
import { loadObject } from './loader.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`${name}.o`, FIXTURES)));
}

/** A mutable copy of a fixture with helpers to find its headers. */
class Mutant {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  readonly elf: ElfFile;
  constructor(readonly name: string) {
    this.bytes = fixture(name);
    this.dv = new DataView(this.bytes.buffer);
    this.elf = parseElf(fixture(name), `${name}.o`);
  }
  get shoff(): number {
    return Number(this.dv.getBigUint64(0x28, true));
  }
  /** File offset of the header of the section named `name`. */
  shdr(name: string): number {
    const s = this.elf.sections.find((x) => x.name === name);
    if (!s) throw new Error(`no section ${name}`);
    return this.shoff + s.index * 64;
  }
  /** File offset of the symbol named `name`. */
  sym(name: string): number {
    const s = this.elf.symbols.find((x) => x.name === name)!;
    return this.elf.symtab.offset + s.index * 24;
  }
  symIndex(name: string): number {
    return this.elf.symbols.find((x) => x.name === name)!.index;
  }
  /** File offset of relocation `i` of section `rel`. */
  rel(rel: string, i: number): number {
    return this.elf.sections.find((x) => x.name === rel)!.offset + i * 16;
  }
  load(opts?: Parameters<typeof loadObject>[2]): unknown {
    return loadObject(this.bytes, `${this.name}.o`, opts);
  }
}

function elfError(f: () => unknown): ElfError {
  try {
    f();
  } catch (e) {
    if (e instanceof ElfError) return e;
    throw e;
  }
  throw new Error('expected an ElfError');
}

describe('ELF header', () => {
  test('not an ELF file', () => {
    expect(elfError(() => loadObject(new TextEncoder().encode('#!/bin/sh\n'), 'a.o')).message).toBe(
      'a.o: not an ELF file (bad magic) (offset 0x0)',
    );
  });
  test('only the magic (uBPF ehdr-short)', () => {
    expect(() => loadObject(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46), 'a.o')).toThrow('a.o: truncated ELF header (4 bytes, need 64) (offset 0x0)');
  });
  test('ELFCLASS32 (uBPF wrong-class)', () => {
    const m = new Mutant('xdp_flow');
    m.bytes[4] = 1;
    expect(() => m.load()).toThrow('xdp_flow.o: not a 64-bit ELF file (EI_CLASS 1) (offset 0x4)');
  });
  test('big-endian (uBPF wrong-byte-order)', () => {
    const m = new Mutant('xdp_flow');
    m.bytes[5] = 2;
    expect(() => m.load()).toThrow(/big-endian ELF objects are not supported/);
  });
  test('EI_VERSION 2 (uBPF wrong-version)', () => {
    const m = new Mutant('xdp_flow');
    m.bytes[6] = 2;
    expect(() => m.load()).toThrow(/unsupported ELF version 2/);
  });
  test('not relocatable (uBPF wrong-type)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint16(16, 2, true);
    expect(() => m.load()).toThrow('xdp_flow.o: not a relocatable object (e_type 2, expected ET_REL) (offset 0x10)');
  });
  test('another machine (uBPF wrong-machine); EM_NONE from old LLVM is accepted', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint16(18, 62, true);
    expect(() => m.load()).toThrow('xdp_flow.o: not a BPF object (e_machine 62, expected EM_BPF 247) (offset 0x12)');
    m.dv.setUint16(18, 0, true);
    expect(m.load()).toBeDefined();
  });
  test('section header table beyond the file (uBPF bad-section-header-offset)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setBigUint64(0x28, BigInt(m.bytes.length - 32), true);
    expect(() => m.load()).toThrow(/section header table out of range/);
  });
  test('section header entry size (uBPF bad-section-header-size)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint16(0x3a, 1024, true);
    expect(() => m.load()).toThrow('xdp_flow.o: bad section header size 1024 (expected 64) (offset 0x3a)');
  });
  test('too many sections (uBPF too-many-sections)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint16(0x3c, 1024, true);
    expect(() => m.load()).toThrow(/section header table out of range \(1024 headers/);
  });
  test('section name string table index', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint16(0x3e, 3, true); // section 3 (xdp) is not a string table
    expect(() => m.load()).toThrow('xdp_flow.o: bad section name string table index 3 (offset 0x3e)');
  });
});

describe('sections and symbols', () => {
  test('section data beyond the file (uBPF bad-section-offset, bad-section-size)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setBigUint64(m.shdr('xdp') + 24, BigInt(m.bytes.length), true);
    expect(() => m.load()).toThrow(`xdp_flow.o: section offset or size out of range (section xdp, offset 0x${m.bytes.length.toString(16)})`);
    const n = new Mutant('xdp_flow');
    n.dv.setBigUint64(n.shdr('xdp') + 32, 1n << 40n, true);
    expect(() => n.load()).toThrow(/section offset or size out of range \(section xdp/);
  });
  test('symbol table without a string table (uBPF bad-rel-strtab-index)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.shdr('.symtab') + 40, 30, true);
    expect(() => m.load()).toThrow(/bad string table section index 30 \(section \.symtab/);
  });
  test('symbol name offset out of the string table (uBPF bad-rel-symbol-name)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.sym('flows'), 0x100000, true);
    expect(() => m.load()).toThrow(/symbol \d+ has a bad name offset 0x100000 \(section \.symtab/);
  });
  test('stripped object', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.shdr('.symtab') + 4, 1, true); // SHT_PROGBITS
    expect(() => m.load()).toThrow('xdp_flow.o: no symbol table (stripped object?)');
  });
  test('no program left (uBPF no-text-section)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.shdr('xdp') + 4, 0, true); // SHT_NULL
    expect(() => m.load()).toThrow(/no BPF programs in the object/);
  });
  test('a function symbol running past its section', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setBigUint64(m.sym('xdp_count') + 16, 0x1000n, true);
    expect(() => m.load()).toThrow("xdp_flow.o: corrupted function 'xdp_count' (offset 0x0, size 4096) (section xdp, offset 0x0)");
  });
  test('struct_ops sections are not supported', () => {
    const m = new Mutant('xdp_flow');
    // Rename .debug_loclists (15 characters) in the shared string table.
    const at = m.elf.sections[1]!.offset + m.dv.getUint32(m.shdr('.debug_loclists'), true);
    m.bytes.set(new TextEncoder().encode('.struct_ops\0'), at);
    expect(() => m.load()).toThrow('xdp_flow.o: struct_ops maps are not supported (section .struct_ops)');
  });
});

describe('relocations', () => {
  test('offset not on an instruction (uBPF bad-rel-offset)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setBigUint64(m.rel('.relxdp', 0), 500n, true);
    expect(() => m.load()).toThrow(`xdp_flow.o: bad relocation offset 0x1f4 in relocation #0 (section .relxdp, offset 0x${m.rel('.relxdp', 0).toString(16)})`);
    m.dv.setBigUint64(m.rel('.relxdp', 0), 0x10000n, true);
    expect(() => m.load()).toThrow(/bad relocation offset 0x10000/);
  });
  test('symbol index out of the table (uBPF bad-rel-symbol-index)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.rel('.relxdp', 1) + 12, 1000, true);
    expect(() => m.load()).toThrow(/relocation #1 refers to missing symbol 1000 \(section \.relxdp/);
  });
  test('relocation section linked to another symbol table (uBPF bad-rel-symbol-table-section-index)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.shdr('.relxdp') + 40, 30, true);
    expect(() => m.load()).toThrow(/bad symbol table section index 30 \(section \.relxdp/);
  });
  test('unsupported type (uBPF bad-rel-type)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.rel('.relxdp', 0) + 8, 3, true); // R_BPF_64_ABS32 in code
    expect(() => m.load()).toThrow(/unsupported relocation type 3 against 'max_len' on instruction 7 \(section \.relxdp/);
  });
  test('against a symbol that is not defined (uBPF rel-sym-not-found)', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint16(m.sym('flows') + 6, 0, true); // st_shndx = SHN_UNDEF
    expect(() => m.load()).toThrow("xdp_flow.o: program 'xdp_count' instruction 20: relocation against missing symbol 'flows' (section .relxdp, offset 0x");
    m.bytes[m.sym('flows') + 4] = 0x10; // STB_GLOBAL, STT_NOTYPE: an extern
    expect(() => m.load()).toThrow(/relocation against extern 'flows' \(kfuncs, ksyms and kconfig externs are not supported\)/);
  });
  test('a call relocated against data', () => {
    const m = new Mutant('tc_subprog');
    // .relclassifier #1 is the call to scale; point it at LICENSE.
    m.dv.setUint32(m.rel('.relclassifier', 1) + 12, m.symIndex('LICENSE'), true);
    expect(() => m.load()).toThrow(/call relocation against 'LICENSE' in non-code section 'license'/);
  });
  test('RELA sections for code', () => {
    const m = new Mutant('xdp_flow');
    m.dv.setUint32(m.shdr('.relxdp') + 4, 4, true);
    expect(() => m.load()).toThrow('xdp_flow.o: unsupported RELA relocation section (BPF objects use REL) (section .relxdp)');
  });
  test('a call into the middle of a function', () => {
    const m = new Mutant('tc_subprog');
    // scale's first call (slot 1 of .text) targets twice at 8; make it 7, inside scale.
    m.dv.setInt32(m.elf.sections.find((s) => s.name === '.text')!.offset + 8 + 4, 5, true);
    expect(() => m.load()).toThrow(/instruction 1 of 'scale' calls instruction 7 of '\.text', which does not start a function/);
  });
  test('a map relocation that matches no map', () => {
    const m = new Mutant('xdp_flow');
    // Move LICENSE into .maps, 8 bytes into flows, and point the lddw of flows at it.
    m.dv.setUint16(m.sym('LICENSE') + 6, m.elf.sections.find((s) => s.name === '.maps')!.index, true);
    m.dv.setBigUint64(m.sym('LICENSE') + 8, 8n, true);
    m.dv.setUint32(m.rel('.relxdp', 2) + 12, m.symIndex('LICENSE'), true);
    expect(() => m.load()).toThrow(/instruction 20: no map at offset 8 of '\.maps' for 'LICENSE'/);
  });
});

describe('BTF', () => {
  test('a corrupt .BTF is a BtfError naming the object', () => {
    const m = new Mutant('xdp_flow');
    m.bytes[m.elf.sections.find((s) => s.name === '.BTF')!.offset] = 0;
    expect(() => m.load()).toThrow(BtfError);
    expect(() => m.load()).toThrow(/^xdp_flow\.o: bad magic 0xeb00/);
  });
  test('BTF-defined maps without .BTF', () => {
    const m = new Mutant('xdp_flow');
    const at = m.elf.sections[1]!.offset + m.dv.getUint32(m.shdr('.BTF'), true);
    m.bytes[at + 3] = 0x58; // .BTF -> .BTX, and .BTF.ext -> .BTX.ext with it (shared suffix)
    expect(() => m.load()).toThrow('xdp_flow.o: BTF-defined maps need a .BTF section (section .maps)');
  });
  test('a CO-RE relocation that does not match the compiled instruction', () => {
    const m = new Mutant('core');
    // core_prog slot 15 is `r1 = 8`, info.start's byte offset; make it 9.
    m.dv.setInt32(m.elf.sections.find((s) => s.name === 'tp/sched/sched_switch')!.offset + 15 * 8 + 4, 9, true);
    expect(() => m.load()).toThrow(
      "core.o: CO-RE relocation #0 ('0:2:0' of type [2], kind 0) at instruction 15: instruction holds 9, expected 8 (section tp/sched/sched_switch, offset 0x78)",
    );
  });
});
