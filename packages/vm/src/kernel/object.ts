// A minimal BPF ELF object writer, so bare bytecode (a `.data` program, a generated test) can be
// loaded into the kernel with bpftool without a compiler. The layout is what clang emits and
// libbpf expects: the entry function in the program's section (`xdp`, `tc`, `socket`), the
// subprograms of bpf-to-bpf calls as local functions in `.text`, a `.rel<section>` entry
// (R_BPF_64_32) for each call from the entry function into `.text`, and a `license` section.
// Calls inside `.text` keep their relative offsets; libbpf resolves those without relocations.

import { RewindError } from '../errors.js';
import { BPF_CALL, BPF_JMP, BPF_PSEUDO_CALL, encode, LDDW, type Bytecode } from '../isa.js';

/** Bytecode that cannot be written as a loadable object (a map reference, a call into the entry function). */
export class ObjectWriteError extends RewindError {
  override name = 'ObjectWriteError';
}

export interface WriteObjectOptions {
  /** ELF section of the entry function; it selects the program type for libbpf (`xdp`, `tc`, `socket`). */
  section?: string;
  /** Name of the entry function's symbol, which bpftool uses as the program's name. */
  name?: string;
  license?: string;
}

const EM_BPF = 247;
const ET_REL = 1;
const SHT_PROGBITS = 1;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHT_REL = 9;
const SHF_WRITE = 0x1;
const SHF_ALLOC = 0x2;
const SHF_EXECINSTR = 0x4;
const SHF_INFO_LINK = 0x40;
const STB_LOCAL = 0;
const STB_GLOBAL = 1;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const R_BPF_64_32 = 10;

/** Slots where bpf-to-bpf calls land, sorted; lddw's second slots are skipped. */
export function callTargets(code: Bytecode): number[] {
  const targets = new Set<number>();
  for (let pc = 0; pc < code.length; pc++) {
    const op = code.op[pc]!;
    if (op === LDDW) {
      pc++;
      continue;
    }
    if (op === (BPF_JMP | BPF_CALL) && code.src[pc] === BPF_PSEUDO_CALL) targets.add(pc + 1 + code.imm[pc]!);
  }
  return [...targets].sort((a, b) => a - b);
}

/** Writes bytecode (entry function first, subprograms after it) as a relocatable BPF ELF object. */
export function writeBpfObject(code: Bytecode, opts: WriteObjectOptions = {}): Uint8Array {
  const section = opts.section ?? 'xdp';
  const name = opts.name ?? 'prog';
  const bytes = encode(code);
  for (let pc = 0; pc < code.length; pc++) {
    if (code.op[pc] === LDDW) {
      if (code.src[pc] !== 0) throw new ObjectWriteError(`lddw at pc ${pc} has source ${code.src[pc]}: only plain 64-bit constants can be written without maps`);
      pc++;
    }
  }
  const targets = callTargets(code);
  const mainEnd = targets[0] ?? code.length;
  if (mainEnd <= 0 || targets.some((t) => t >= code.length)) throw new ObjectWriteError(`a bpf-to-bpf call targets pc ${targets.find((t) => t <= 0 || t >= code.length)}, outside the subprograms`);

  // Symbols: null, the subprograms (local), then the entry function and _license (global).
  const strtab = new StringTable();
  const shstrtab = new StringTable();
  interface Sym { name: number; info: number; shndx: number; value: number; size: number }
  const SEC_MAIN = 1;
  const hasText = targets.length > 0;
  const SEC_TEXT = hasText ? 2 : -1;
  const SEC_LICENSE = hasText ? 3 : 2;
  const syms: Sym[] = [{ name: 0, info: 0, shndx: 0, value: 0, size: 0 }];
  const subSym = new Map<number, number>();
  targets.forEach((start, i) => {
    const end = targets[i + 1] ?? code.length;
    subSym.set(start, syms.length);
    syms.push({ name: strtab.add(`sub_${start}`), info: (STB_LOCAL << 4) | STT_FUNC, shndx: SEC_TEXT, value: (start - mainEnd) * 8, size: (end - start) * 8 });
  });
  const firstGlobal = syms.length;
  syms.push({ name: strtab.add(name), info: (STB_GLOBAL << 4) | STT_FUNC, shndx: SEC_MAIN, value: 0, size: mainEnd * 8 });
  syms.push({ name: strtab.add('_license'), info: (STB_GLOBAL << 4) | STT_OBJECT, shndx: SEC_LICENSE, value: 0, size: 4 });

  // Calls from the entry function into .text: imm = -1 against the callee's symbol (libbpf takes
  // the callee at symbol value / 8 + imm + 1).
  const main = bytes.slice(0, mainEnd * 8);
  const mainDv = new DataView(main.buffer);
  const rels: { offset: number; sym: number }[] = [];
  for (let pc = 0; pc < mainEnd; pc++) {
    if (code.op[pc] === LDDW) {
      pc++;
      continue;
    }
    if (code.op[pc] === (BPF_JMP | BPF_CALL) && code.src[pc] === BPF_PSEUDO_CALL) {
      const target = pc + 1 + code.imm[pc]!;
      mainDv.setInt32(pc * 8 + 4, -1, true);
      rels.push({ offset: pc * 8, sym: subSym.get(target)! });
    }
  }

  const symtab = new Uint8Array(syms.length * 24);
  const sdv = new DataView(symtab.buffer);
  syms.forEach((s, i) => {
    const b = i * 24;
    sdv.setUint32(b, s.name, true);
    symtab[b + 4] = s.info;
    sdv.setUint16(b + 6, s.shndx, true);
    sdv.setBigUint64(b + 8, BigInt(s.value), true);
    sdv.setBigUint64(b + 16, BigInt(s.size), true);
  });
  const rel = new Uint8Array(rels.length * 16);
  const rdv = new DataView(rel.buffer);
  rels.forEach((r, i) => {
    rdv.setBigUint64(i * 16, BigInt(r.offset), true);
    rdv.setBigUint64(i * 16 + 8, (BigInt(r.sym) << 32n) | BigInt(R_BPF_64_32), true);
  });
  const license = new TextEncoder().encode(`${opts.license ?? 'GPL'}\0`);

  interface Sec { name: string; type: number; flags: number; data: Uint8Array; link?: number; info?: number; align: number; entsize?: number }
  const secs: Sec[] = [{ name: section, type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: main, align: 8 }];
  if (hasText) secs.push({ name: '.text', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_EXECINSTR, data: bytes.slice(mainEnd * 8), align: 8 });
  secs.push({ name: 'license', type: SHT_PROGBITS, flags: SHF_ALLOC | SHF_WRITE, data: license, align: 1 });
  const symtabIndex = secs.length + 1 + (rels.length ? 1 : 0);
  if (rels.length) secs.push({ name: `.rel${section}`, type: SHT_REL, flags: SHF_INFO_LINK, data: rel, link: symtabIndex, info: SEC_MAIN, align: 8, entsize: 16 });
  secs.push({ name: '.symtab', type: SHT_SYMTAB, flags: 0, data: symtab, link: symtabIndex + 1, info: firstGlobal, align: 8, entsize: 24 });
  secs.push({ name: '.strtab', type: SHT_STRTAB, flags: 0, data: strtab.bytes(), align: 1 });
  const shstrIndex = secs.length + 1;
  const nameOffsets = secs.map((s) => shstrtab.add(s.name));
  const shstrName = shstrtab.add('.shstrtab');
  secs.push({ name: '.shstrtab', type: SHT_STRTAB, flags: 0, data: shstrtab.bytes(), align: 1 });
  nameOffsets.push(shstrName);

  // Layout: header, section contents (8-aligned), section header table.
  let at = 64;
  const offsets = secs.map((s) => {
    at = (at + 7) & ~7;
    const o = at;
    at += s.data.length;
    return o;
  });
  const shoff = (at + 7) & ~7;
  const out = new Uint8Array(shoff + (secs.length + 1) * 64);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // ELF64, little-endian, version 1, System V ABI
  dv.setUint16(16, ET_REL, true);
  dv.setUint16(18, EM_BPF, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(40, BigInt(shoff), true);
  dv.setUint16(52, 64, true); // e_ehsize
  dv.setUint16(58, 64, true); // e_shentsize
  dv.setUint16(60, secs.length + 1, true);
  dv.setUint16(62, shstrIndex, true);
  secs.forEach((s, i) => {
    out.set(s.data, offsets[i]!);
    const h = shoff + (i + 1) * 64;
    dv.setUint32(h, nameOffsets[i]!, true);
    dv.setUint32(h + 4, s.type, true);
    dv.setBigUint64(h + 8, BigInt(s.flags), true);
    dv.setBigUint64(h + 24, BigInt(offsets[i]!), true);
    dv.setBigUint64(h + 32, BigInt(s.data.length), true);
    dv.setUint32(h + 40, s.link ?? 0, true);
    dv.setUint32(h + 44, s.info ?? 0, true);
    dv.setBigUint64(h + 48, BigInt(s.align), true);
    dv.setBigUint64(h + 56, BigInt(s.entsize ?? 0), true);
  });
  return out;
}

class StringTable {
  private readonly parts: string[] = ['\0'];
  private size = 1;
  add(s: string): number {
    const at = this.size;
    this.parts.push(`${s}\0`);
    this.size += new TextEncoder().encode(s).length + 1;
    return at;
  }
  bytes(): Uint8Array {
    return new TextEncoder().encode(this.parts.join(''));
  }
}
