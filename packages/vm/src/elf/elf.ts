// A reader for the ELF64 little-endian relocatable objects clang emits for `-target bpf`
// (the System V gABI, elf(5)). Every offset and length read from the file is checked
// before it is used; anything malformed becomes an ElfError naming where it was found.

import { RewindError } from '../errors.js';

/** A malformed or unsupported object: `<file>: <what> (section <name>, offset 0x..)`. */
export class ElfError extends RewindError {
  override name = 'ElfError';
  constructor(
    readonly file: string,
    readonly what: string,
    readonly section?: string,
    readonly offset?: number,
  ) {
    const where = [
      section === undefined ? undefined : `section ${section}`,
      offset === undefined ? undefined : `offset 0x${offset.toString(16)}`,
    ].filter((s) => s !== undefined);
    super(`${file}: ${what}${where.length === 0 ? '' : ` (${where.join(', ')})`}`);
  }
}

export const ET_REL = 1;
export const EM_NONE = 0;
export const EM_BPF = 247;

export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;

export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;

export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;

export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;

export const STV_DEFAULT = 0;
export const STV_INTERNAL = 1;
export const STV_HIDDEN = 2;

/** BPF relocation types (llvm's ELFRelocs/BPF.def, Documentation/bpf/llvm_reloc.rst). */
export const R_BPF_NONE = 0;
export const R_BPF_64_64 = 1;
export const R_BPF_64_ABS64 = 2;
export const R_BPF_64_ABS32 = 3;
export const R_BPF_64_NODYLD32 = 4;
export const R_BPF_64_32 = 10;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  /** File offset of the section's contents. */
  readonly offset: number;
  /** sh_size: for SHT_NOBITS (.bss) the size in memory, with no bytes in the file. */
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly entsize: number;
  /** The section's bytes; empty for SHT_NOBITS and SHT_NULL. */
  readonly data: Uint8Array;
}

export interface ElfSymbol {
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  /** STT_* */
  readonly type: number;
  /** STB_* */
  readonly bind: number;
  /** STV_* */
  readonly visibility: number;
  readonly shndx: number;
}

export interface ElfRel {
  readonly offset: number;
  readonly symbol: ElfSymbol;
  /** R_BPF_* */
  readonly type: number;
}

export interface ElfFile {
  readonly file: string;
  /** All sections by index; sections[0] is the null section. */
  readonly sections: readonly ElfSection[];
  readonly symtab: ElfSection;
  readonly symbols: readonly ElfSymbol[];
}

/** Reads a u64 field that must fit a JavaScript number (every offset and size does). */
function u64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * 0x1_0000_0000 + dv.getUint32(at, true);
}

function cString(bytes: Uint8Array, offset: number): string | undefined {
  if (offset < 0 || offset >= bytes.length) return undefined;
  const end = bytes.indexOf(0, offset);
  if (end < 0) return undefined;
  let s = '';
  for (let i = offset; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** Parses the ELF header, section headers and symbol table of a BPF object. */
export function parseElf(input: Uint8Array, file: string): ElfFile {
  // A plain view: a Node Buffer's slice() would alias rather than copy section bytes.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const fail = (what: string, section?: string, offset?: number): ElfError => new ElfError(file, what, section, offset);
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw fail('not an ELF file (bad magic)', undefined, 0);
  }
  if (bytes.length < EHDR_SIZE) throw fail(`truncated ELF header (${bytes.length} bytes, need ${EHDR_SIZE})`, undefined, 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // e_ident: EI_CLASS at 4, EI_DATA at 5, EI_VERSION at 6.
  if (bytes[4] !== 2) throw fail(`not a 64-bit ELF file (EI_CLASS ${bytes[4]})`, undefined, 4);
  if (bytes[5] === 2) throw fail('big-endian ELF objects are not supported (EI_DATA ELFDATA2MSB)', undefined, 5);
  if (bytes[5] !== 1) throw fail(`invalid byte order (EI_DATA ${bytes[5]})`, undefined, 5);
  if (bytes[6] !== 1) throw fail(`unsupported ELF version ${bytes[6]}`, undefined, 6);
  const eType = dv.getUint16(16, true);
  if (eType !== ET_REL) throw fail(`not a relocatable object (e_type ${eType}, expected ET_REL)`, undefined, 16);
  // Old LLVM set e_machine to EM_NONE; libbpf accepts both.
  const eMachine = dv.getUint16(18, true);
  if (eMachine !== EM_BPF && eMachine !== EM_NONE) {
    throw fail(`not a BPF object (e_machine ${eMachine}, expected EM_BPF ${EM_BPF})`, undefined, 18);
  }
  const shoff = u64(dv, 0x28);
  const shentsize = dv.getUint16(0x3a, true);
  let shnum = dv.getUint16(0x3c, true);
  let shstrndx = dv.getUint16(0x3e, true);
  if (shoff === 0) throw fail('no section header table', undefined, 0x28);
  if (shentsize !== SHDR_SIZE) throw fail(`bad section header size ${shentsize} (expected ${SHDR_SIZE})`, undefined, 0x3a);
  if (shoff + SHDR_SIZE > bytes.length) throw fail('section header table out of range', undefined, shoff);
  // Extended numbering: with e_shnum 0 or e_shstrndx SHN_XINDEX the values live in section 0.
  if (shnum === 0) shnum = u64(dv, shoff + 32);
  if (shstrndx === SHN_XINDEX) shstrndx = dv.getUint32(shoff + 40, true);
  if (shnum === 0 || shoff + shnum * SHDR_SIZE > bytes.length) {
    throw fail(`section header table out of range (${shnum} headers at 0x${shoff.toString(16)})`, undefined, shoff);
  }

  interface RawSection {
    nameOff: number;
    type: number;
    flags: number;
    offset: number;
    size: number;
    link: number;
    info: number;
    entsize: number;
  }
  const raw: RawSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * SHDR_SIZE;
    raw.push({
      nameOff: dv.getUint32(h, true),
      type: dv.getUint32(h + 4, true),
      flags: dv.getUint32(h + 8, true),
      offset: u64(dv, h + 24),
      size: u64(dv, h + 32),
      link: dv.getUint32(h + 40, true),
      info: dv.getUint32(h + 44, true),
      entsize: u64(dv, h + 56),
    });
  }
  const inFile = (s: RawSection): boolean => s.type === SHT_NOBITS || s.type === SHT_NULL || s.offset + s.size <= bytes.length;
  const strtab = raw[shstrndx];
  if (shstrndx === 0 || strtab === undefined || strtab.type !== SHT_STRTAB) {
    throw fail(`bad section name string table index ${shstrndx}`, undefined, 0x3e);
  }
  if (!inFile(strtab)) throw fail('section name string table out of range', undefined, strtab.offset);
  const shstr = bytes.subarray(strtab.offset, strtab.offset + strtab.size);
  const sections: ElfSection[] = raw.map((s, index) => {
    const name = index === 0 ? '' : cString(shstr, s.nameOff);
    if (name === undefined) {
      throw fail(`section ${index} has a bad name offset 0x${s.nameOff.toString(16)}`, undefined, shoff + index * SHDR_SIZE);
    }
    if (!inFile(s)) throw fail('section offset or size out of range', name, s.offset);
    const hasBytes = s.type !== SHT_NOBITS && s.type !== SHT_NULL;
    return {
      index, name, type: s.type, flags: s.flags, offset: s.offset, size: s.size,
      link: s.link, info: s.info, entsize: s.entsize,
      data: hasBytes ? bytes.subarray(s.offset, s.offset + s.size) : new Uint8Array(0),
    };
  });

  const symtabs = sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length === 0) throw fail('no symbol table (stripped object?)');
  if (symtabs.length > 1) throw fail('more than one symbol table', symtabs[1]!.name);
  const symtab = symtabs[0]!;
  if (symtab.entsize !== SYM_SIZE || symtab.size % SYM_SIZE !== 0) {
    throw fail(`bad symbol table entry size ${symtab.entsize}`, symtab.name, symtab.offset);
  }
  const strsec = sections[symtab.link];
  if (symtab.link === 0 || strsec === undefined || strsec.type !== SHT_STRTAB) {
    throw fail(`bad string table section index ${symtab.link}`, symtab.name, symtab.offset);
  }
  const symbols: ElfSymbol[] = [];
  for (let i = 0; i < symtab.size / SYM_SIZE; i++) {
    const at = symtab.offset + i * SYM_SIZE;
    const nameOff = dv.getUint32(at, true);
    const name = nameOff === 0 ? '' : cString(strsec.data, nameOff);
    if (name === undefined) throw fail(`symbol ${i} has a bad name offset 0x${nameOff.toString(16)}`, symtab.name, at);
    const infoByte = bytes[at + 4]!;
    const shndx = dv.getUint16(at + 6, true);
    if (shndx >= shnum && shndx < SHN_LORESERVE) {
      throw fail(`symbol '${name}' refers to section ${shndx}, out of range`, symtab.name, at);
    }
    symbols.push({
      index: i, name,
      type: infoByte & 0xf, bind: infoByte >> 4, visibility: bytes[at + 5]! & 0x3,
      shndx, value: u64(dv, at + 8), size: u64(dv, at + 16),
    });
  }
  return { file, sections, symtab, symbols };
}

/** The relocations of an SHT_REL section, with their symbols. */
export function readRelocations(elf: ElfFile, rel: ElfSection): ElfRel[] {
  const fail = (what: string, offset?: number): ElfError => new ElfError(elf.file, what, rel.name, offset);
  if (rel.entsize !== REL_SIZE || rel.size % REL_SIZE !== 0) throw fail(`bad relocation entry size ${rel.entsize}`, rel.offset);
  if (rel.link !== elf.symtab.index) throw fail(`bad symbol table section index ${rel.link}`, rel.offset);
  const dv = new DataView(rel.data.buffer, rel.data.byteOffset, rel.data.byteLength);
  const out: ElfRel[] = [];
  for (let i = 0; i < rel.size / REL_SIZE; i++) {
    const at = i * REL_SIZE;
    // r_info: symbol index in the upper 32 bits, type in the lower.
    const type = dv.getUint32(at + 8, true);
    const symIndex = dv.getUint32(at + 12, true);
    const symbol = elf.symbols[symIndex];
    if (symbol === undefined) throw fail(`relocation #${i} refers to missing symbol ${symIndex}`, rel.offset + at);
    out.push({ offset: u64(dv, at), symbol, type });
  }
  return out;
}
