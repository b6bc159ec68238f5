// Loads the ELF objects `clang -O2 -g -target bpf` produces into Programs, doing what
// libbpf's bpf_object__open and bpf_object__relocate do (tools/lib/bpf/libbpf.c):
// programs by section, maps, CO-RE, `.text` subprograms appended after each program
// that calls them, and map references turned into BPF_PSEUDO_MAP_IDX[_VALUE] indexes.

import { type Btf, type BtfExt, type BtfType, type LineInfoRecord, parseBtf, parseBtfExt } from '../btf/index.js';
import {
  BPF_CALL,
  BPF_JMP,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  type Bytecode,
  decode,
  LDDW,
} from '../isa.js';
import { BPF_MAP_TYPE, type FuncSym, type LineInfo, type MapDef, type Program, type ProgType } from '../program.js';
import { type InsnArrays, patchCoreInsn, resolveCoreRelo } from './core.js';
import {
  ElfError,
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  parseElf,
  R_BPF_64_32,
  R_BPF_64_64,
  R_BPF_NONE,
  readRelocations,
  SHF_EXECINSTR,
  SHN_LORESERVE,
  SHN_UNDEF,
  SHT_PROGBITS,
  SHT_REL,
  SHT_RELA,
  SHT_STRTAB,
  STB_GLOBAL,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_NOTYPE,
  STT_OBJECT,
  STT_SECTION,
  STV_HIDDEN,
  STV_INTERNAL,
} from './elf.js';
import { collectMaps, type ObjectMaps, valuesOffset } from './maps.js';
import { progTypeForSection } from './sections.js';

export interface BpfObject {
  file: string;
  /** Entry programs, in section order then offset order (libbpf's order). */
  programs: Program[];
  /** Maps: legacy `maps`, BTF-defined `.maps`, then global data sections. */
  maps: MapDef[];
  btf?: Btf;
  btfExt?: BtfExt;
  license?: string;
}

export interface LoadObjectOptions {
  /** Type of programs in sections whose name tells none (libbpf would need bpf_program__set_type). */
  type?: ProgType;
}

const CALL = BPF_JMP | BPF_CALL;
const latin1 = new TextDecoder('latin1');
/** SHT_LLVM_ADDRSIG: address-significance table, of no use to a loader. */
const SHT_LLVM_ADDRSIG = 0x6fff4c03;

/** A FUNC symbol's code: an entry program or a subprogram. */
interface Func {
  readonly name: string;
  readonly sec: ElfSection;
  /** Slot of the first instruction within the section. */
  readonly start: number;
  readonly count: number;
  /** A private copy, patched by CO-RE, copied into each program that uses it. */
  readonly code: InsnArrays;
  /** Entry program, or subprogram appended to the programs calling it. */
  entry: boolean;
  readonly bind: number;
  /** Relocations by instruction index within the function. */
  readonly relocs: Map<number, Reloc>;
}

/** libbpf's reloc_desc: RELO_CALL, RELO_SUBPROG_ADDR, RELO_LD64, RELO_DATA. */
type Reloc =
  | { readonly kind: 'call' | 'func'; readonly section: number; readonly symOff: number }
  | { readonly kind: 'map'; readonly map: number }
  | { readonly kind: 'data'; readonly map: number; readonly symOff: number };

/** Loads a BPF ELF object. Throws ElfError (or BtfError for a malformed .BTF/.BTF.ext). */
export function loadObject(bytes: Uint8Array, file: string, opts: LoadObjectOptions = {}): BpfObject {
  return new ObjectLoader(parseElf(bytes, file), opts).load();
}

class ObjectLoader {
  private readonly file: string;
  private readonly progSecs = new Map<number, ElfSection>();
  private readonly funcsBySec = new Map<number, Func[]>();
  private funcs: Func[] = [];
  private btf?: Btf;
  private btfExt?: BtfExt;
  private maps!: ObjectMaps;

  constructor(
    private readonly elf: ElfFile,
    private readonly opts: LoadObjectOptions,
  ) {
    this.file = elf.file;
  }

  private fail(what: string, section?: string, offset?: number): ElfError {
    return new ElfError(this.file, what, section, offset);
  }

  load(): BpfObject {
    const { elf } = this;
    let license: string | undefined;
    let btfSec: ElfSection | undefined;
    let extSec: ElfSection | undefined;
    let mapsSec: ElfSection | undefined;
    let legacySec: ElfSection | undefined;
    const relSecs: ElfSection[] = [];
    // bpf_object__elf_collect: classify sections by name and type.
    for (const s of elf.sections) {
      if (s.index === 0 || s.type === SHT_STRTAB || s.type === SHT_LLVM_ADDRSIG || s.name.startsWith('.debug_')) continue;
      if (s.name === 'license') {
        const nul = s.data.indexOf(0);
        license = latin1.decode(s.data.subarray(0, nul < 0 ? s.data.length : nul));
      } else if (s.name === 'maps') {
        legacySec = s;
      } else if (s.name === '.maps') {
        mapsSec = s;
      } else if (s.name === '.BTF' || s.name === '.BTF.ext') {
        if (s.type !== SHT_PROGBITS) throw this.fail(`${s.name} is not a PROGBITS section`, s.name);
        if (s.name === '.BTF') btfSec = s;
        else extSec = s;
      } else if (s.name === '.struct_ops' || s.name === '.struct_ops.link') {
        throw this.fail('struct_ops maps are not supported', s.name);
      } else if (s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0) {
        this.progSecs.set(s.index, s);
      } else if (s.type === SHT_REL) {
        relSecs.push(s);
      } else if (s.type === SHT_RELA && (elf.sections[s.info]?.flags ?? 0) & SHF_EXECINSTR) {
        throw this.fail('unsupported RELA relocation section (BPF objects use REL)', s.name);
      }
    }

    if (btfSec) {
      this.btf = parseBtf(btfSec.data, this.file);
      this.fixupDatasecs(this.btf);
      if (extSec) this.btfExt = parseBtfExt(extSec.data, this.btf);
    }
    this.collectFuncs();
    this.maps = collectMaps(elf, this.btf, legacySec, mapsSec);

    const mapRels: ElfSection[] = [];
    for (const rel of relSecs) {
      const target = elf.sections[rel.info];
      if (rel.info === 0 || target === undefined) {
        throw this.fail(`relocation section targets section ${rel.info}, out of range`, rel.name);
      }
      // .BTF and .BTF.ext relocations only matter to a linker; libbpf skips all but code and .maps.
      if (this.progSecs.has(target.index)) this.collectProgRelocs(rel, target);
      else if (target === mapsSec) mapRels.push(rel);
      else if ((target.flags & SHF_EXECINSTR) !== 0 && target.size === 0 && rel.size > 0) {
        throw this.fail('relocations against an empty code section', rel.name);
      }
    }
    this.applyCore();
    const slots = mapRels.flatMap((rel) => this.collectSlots(rel, mapsSec!));
    for (const [map, entries] of groupSlots(slots)) this.maps.maps[map] = { ...this.maps.maps[map]!, initialSlots: entries };

    const programs: Program[] = [];
    for (const f of this.funcs) {
      if (!f.entry) continue;
      const type = progTypeForSection(f.sec.name) ?? this.opts.type;
      if (type === undefined) {
        throw this.fail(`cannot tell the type of program '${f.name}' from its section name; pass --type (xdp, tc, socket, ...)`, f.sec.name);
      }
      const { code, funcs, lines } = this.layout(f);
      programs.push({
        name: f.name,
        section: f.sec.name,
        type,
        code,
        funcs,
        maps: this.maps.maps,
        ...(lines ? { lines } : {}),
        ...(license !== undefined ? { license } : {}),
      });
    }
    if (programs.length === 0) throw this.fail('no BPF programs in the object (no global function in an executable section)');
    return {
      file: this.file,
      programs,
      maps: this.maps.maps,
      ...(this.btf ? { btf: this.btf } : {}),
      ...(this.btfExt ? { btfExt: this.btfExt } : {}),
      ...(license !== undefined ? { license } : {}),
    };
  }

  /**
   * btf_fixup_datasec: clang leaves DATASEC sizes and the offsets of global variables
   * zero; the ELF section size and symbol values supply them. Hidden globals count as static.
   */
  private fixupDatasecs(btf: Btf): void {
    for (const t of btf.types) {
      if (t.kind !== 'datasec' || t.name === '.kconfig' || t.name === '.ksyms') continue;
      const sec = this.elf.sections.find((s) => s.index !== 0 && s.name === t.name);
      const fixOffsets = t.size === 0;
      // libbpf fails the open here; a DATASEC without its section only loses formatting.
      if (fixOffsets && (sec === undefined || sec.size === 0)) continue;
      const vars = t.vars.map((vi) => {
        const v = btf.type(vi.type);
        if (v.kind !== 'var' || v.linkage !== 'global') return vi;
        const sym = this.elf.symbols.find(
          (s) => s.type === STT_OBJECT && (s.bind === STB_GLOBAL || s.bind === STB_WEAK) && s.name === v.name,
        );
        if (!sym) return vi;
        if (sym.visibility === STV_HIDDEN || sym.visibility === STV_INTERNAL) btf.replace({ ...v, linkage: 'static' });
        return fixOffsets ? { ...vi, offset: sym.value } : vi;
      });
      vars.sort((a, b) => a.offset - b.offset);
      btf.replace({ ...t, size: fixOffsets ? sec!.size : t.size, vars });
    }
  }

  /** bpf_object__add_programs: every FUNC symbol of an executable section. */
  private collectFuncs(): void {
    for (const sec of this.progSecs.values()) {
      for (const sym of this.elf.symbols) {
        if (sym.shndx !== sec.index || sym.type !== STT_FUNC) continue;
        if (sym.size === 0 || sym.size % 8 !== 0 || sym.value % 8 !== 0 || sym.value + sym.size > sec.size) {
          throw this.fail(`corrupted function '${sym.name}' (offset 0x${sym.value.toString(16)}, size ${sym.size})`, sec.name, sym.value);
        }
        this.funcs.push({
          name: sym.name,
          sec,
          start: sym.value / 8,
          count: sym.size / 8,
          code: decode(sec.data.subarray(sym.value, sym.value + sym.size)),
          entry: true,
          bind: sym.bind,
          relocs: new Map(),
        });
      }
    }
    this.funcs.sort((a, b) => a.sec.index - b.sec.index || a.start - b.start);
    // prog_is_subprog: .text functions are subprograms unless the object has only one
    // function. Static functions elsewhere, which libbpf rejects, are kept as subprograms
    // of their section, callable through the calls clang resolves within it.
    const several = this.funcs.length > 1;
    for (const f of this.funcs) {
      f.entry = f.sec.name === '.text' ? !several : f.bind !== STB_LOCAL;
      const list = this.funcsBySec.get(f.sec.index) ?? [];
      list.push(f);
      this.funcsBySec.set(f.sec.index, list);
    }
  }

  /** The function of section `sec` containing instruction slot `insn` (find_prog_by_sec_insn). */
  private funcAt(sec: number, insn: number): Func | undefined {
    const list = this.funcsBySec.get(sec);
    if (!list) return undefined;
    let lo = 0;
    let hi = list.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (list[mid]!.start <= insn) lo = mid;
      else hi = mid - 1;
    }
    const f = list[lo]!;
    return insn >= f.start && insn < f.start + f.count ? f : undefined;
  }

  private symbolName(sym: ElfSymbol): string {
    // Relocations against static functions and data use the section symbol, which has no name.
    if (sym.type === STT_SECTION && sym.name === '') return this.elf.sections[sym.shndx]?.name ?? '';
    return sym.name;
  }

  /** bpf_object__collect_prog_relos and bpf_program__record_reloc. */
  private collectProgRelocs(rel: ElfSection, sec: ElfSection): void {
    readRelocations(this.elf, rel).forEach((r, i) => {
      const at = rel.offset + i * 16;
      if (r.offset % 8 !== 0 || r.offset >= sec.size) {
        throw this.fail(`bad relocation offset 0x${r.offset.toString(16)} in relocation #${i}`, rel.name, at);
      }
      const insn = r.offset / 8;
      const f = this.funcAt(sec.index, insn);
      if (!f) return;
      const idx = insn - f.start;
      const op = f.code.op[idx]!;
      const name = this.symbolName(r.symbol);
      if (r.type === R_BPF_NONE) return;
      if (r.type === R_BPF_64_64) {
        if (op !== LDDW || idx + 1 >= f.count) {
          throw this.fail(`R_BPF_64_64 relocation against '${name}' on instruction ${insn}, which is not lddw`, rel.name, at);
        }
      } else if (r.type === R_BPF_64_32) {
        if (op !== CALL) throw this.fail(`R_BPF_64_32 relocation against '${name}' on instruction ${insn}, which is not a call`, rel.name, at);
      } else {
        throw this.fail(`unsupported relocation type ${r.type} against '${name}' on instruction ${insn}`, rel.name, at);
      }
      f.relocs.set(idx, this.recordReloc(f, idx, r.symbol, name, rel, at));
    });
  }

  private recordReloc(f: Func, idx: number, sym: ElfSymbol, name: string, rel: ElfSection, at: number): Reloc {
    const fail = (what: string): ElfError => this.fail(`program '${f.name}' instruction ${f.start + idx}: ${what}`, rel.name, at);
    if (sym.shndx === SHN_UNDEF) {
      const extern = (sym.bind === STB_GLOBAL || sym.bind === STB_WEAK) && sym.type === STT_NOTYPE && name !== '';
      throw fail(extern
        ? `relocation against extern '${name}' (kfuncs, ksyms and kconfig externs are not supported)`
        : `relocation against missing symbol '${name || `#${sym.index}`}'`);
    }
    if (sym.shndx >= SHN_LORESERVE) {
      throw fail(`relocation against '${name}' in special section 0x${sym.shndx.toString(16)} (uninitialized global variable?)`);
    }
    const symSec = this.elf.sections[sym.shndx]!;
    if (f.code.op[idx] === CALL) {
      if (f.code.src[idx] !== BPF_PSEUDO_CALL) throw fail(`call relocation against '${name}' on a helper call`);
      if (!this.progSecs.has(sym.shndx)) throw fail(`call relocation against '${name}' in non-code section '${symSec.name}'`);
      if (sym.value % 8 !== 0) throw fail(`call relocation against '${name}' at unaligned offset ${sym.value}`);
      return { kind: 'call', section: sym.shndx, symOff: sym.value };
    }
    // lddw: a subprogram's address (callbacks), a map, or global data.
    if (this.progSecs.has(sym.shndx) && (sym.type === STT_FUNC || sym.type === STT_SECTION)) {
      if (sym.value % 8 !== 0 || f.code.imm[idx]! % 8 !== 0) {
        throw fail(`bad subprogram address relocation against '${name}' at ${sym.value}+${f.code.imm[idx]}`);
      }
      return { kind: 'func', section: sym.shndx, symOff: sym.value };
    }
    const placed = this.maps.placed.find((p) => p.section === sym.shndx && p.offset === sym.value);
    if (placed) return { kind: 'map', map: placed.map };
    if (this.maps.placed.some((p) => p.section === sym.shndx)) {
      throw fail(`no map at offset ${sym.value} of '${symSec.name}' for '${name}'`);
    }
    const data = this.maps.dataSections.get(sym.shndx);
    if (data !== undefined) return { kind: 'data', map: data, symOff: sym.value };
    throw fail(`relocation against '${name}' in section '${symSec.name}', which holds neither maps nor global data`);
  }

  /** bpf_object__relocate_core, with the object's own types as the target. */
  private applyCore(): void {
    if (!this.btf || !this.btfExt) return;
    for (const { section, records } of this.btfExt.coreRelos) {
      const sec = [...this.progSecs.values()].find((s) => s.name === section);
      if (!sec) continue;
      records.forEach((rec, i) => {
        if (rec.insnOff % 8 !== 0) throw this.fail(`CO-RE relocation #${i} at unaligned offset ${rec.insnOff}`, '.BTF.ext');
        const insn = rec.insnOff / 8;
        const f = this.funcAt(sec.index, insn);
        if (!f) return;
        const res = resolveCoreRelo(this.btf!, rec);
        const why = patchCoreInsn(f.code, insn - f.start, res);
        if (why !== undefined) {
          throw this.fail(`CO-RE relocation #${i} ('${rec.access}' of type [${rec.typeId}], kind ${rec.kind}) at instruction ${insn}: ${why}`, section, rec.insnOff);
        }
      });
    }
  }

  /** bpf_object__collect_map_relos: `values = { [i] = &x }` of prog_array and map-in-map maps. */
  private collectSlots(rel: ElfSection, mapsSec: ElfSection): { map: number; index: number; name: string }[] {
    return readRelocations(this.elf, rel).map((r, i) => {
      const fail = (what: string): ElfError => this.fail(`.maps relocation #${i}: ${what}`, rel.name, rel.offset + i * 16);
      const name = r.symbol.name;
      const p = this.maps.placed.find(
        (m) => m.section === mapsSec.index && m.defType !== undefined && m.offset <= r.offset && r.offset + 8 <= m.offset + m.size,
      );
      if (!p) throw fail(`offset 0x${r.offset.toString(16)} is outside every map`);
      const map = this.maps.maps[p.map]!;
      if (map.type === BPF_MAP_TYPE.array_of_maps || map.type === BPF_MAP_TYPE.hash_of_maps) {
        if (r.symbol.shndx !== mapsSec.index) throw fail(`'${name}' isn't a BTF-defined map`);
        if (map.type === BPF_MAP_TYPE.hash_of_maps && map.keySize !== 4) throw fail(`hash-of-maps '${map.name}' needs a 4-byte key`);
        if (!this.maps.maps.some((m) => m.name === name && !m.globalData)) throw fail(`'${name}' isn't a valid map reference`);
      } else if (map.type === BPF_MAP_TYPE.prog_array) {
        const prog = this.funcs.find((f) => f.name === name && f.entry);
        if (!prog || prog.sec.index !== r.symbol.shndx || prog.start * 8 !== r.symbol.value) {
          throw fail(`'${name}' isn't an entry-point program`);
        }
      } else {
        throw fail(`map '${map.name}' takes no initial values`);
      }
      const base = valuesOffset(this.btf!, p.defType!);
      if (base === undefined) throw fail(`map '${map.name}' has no 'values' member`);
      const off = r.offset - p.offset - base;
      if (off < 0 || off % 8 !== 0) throw fail(`offset 0x${r.offset.toString(16)} is not a slot of '${map.name}'`);
      return { map: p.map, index: off / 8, name };
    });
  }

  /**
   * bpf_object__relocate_calls for one entry program: each subprogram it reaches is
   * appended once, in order of first reference, depth first, and call and callback
   * immediates become offsets relative to the next instruction. Then map and global
   * data references are resolved (bpf_object__relocate_data) and func/line info moved.
   */
  private layout(entry: Func): { code: Bytecode; funcs: FuncSym[]; lines?: LineInfo[] } {
    const buf = new InsnBuffer();
    const placed = new Map<Func, number>();
    const order: Func[] = [];
    const dataRelocs: { pc: number; r: Reloc }[] = [];
    const append = (f: Func): number => {
      const at = buf.append(f.code);
      placed.set(f, at);
      order.push(f);
      for (const [i, r] of f.relocs) if (r.kind === 'map' || r.kind === 'data') dataRelocs.push({ pc: at + i, r });
      return at;
    };
    const relocCode = (f: Func): void => {
      const base = placed.get(f)!;
      for (let i = 0; i < f.count; i++) {
        const pc = base + i;
        const r = f.relocs.get(i);
        // insn_is_subprog_call / insn_is_pseudo_func (a relocated lddw against code).
        const isCall = buf.op[pc] === CALL && buf.src[pc] === BPF_PSEUDO_CALL && buf.dst[pc] === 0 && buf.off[pc] === 0;
        const isFuncAddr = buf.op[pc] === LDDW && (buf.src[pc] === BPF_PSEUDO_FUNC || r?.kind === 'func');
        if (!isCall && !isFuncAddr) continue;
        const where = `instruction ${f.start + i} of '${f.name}'`;
        let secIdx: number;
        let target: number;
        if (r?.kind === 'call' && isCall) {
          secIdx = r.section;
          target = r.symOff / 8 + buf.imm[pc]! + 1;
        } else if (r?.kind === 'func' && isFuncAddr) {
          secIdx = r.section;
          target = (r.symOff + buf.imm[pc]!) / 8;
        } else if (r) {
          throw this.fail(`unexpected ${r.kind} relocation on ${where}`, f.sec.name, (f.start + i) * 8);
        } else if (isFuncAddr) {
          throw this.fail(`callback address without relocation at ${where}`, f.sec.name, (f.start + i) * 8);
        } else {
          // A call clang resolved within the section (to a static function): imm is already
          // relative to the instruction's place in the section.
          secIdx = f.sec.index;
          target = f.start + i + buf.imm[pc]! + 1;
        }
        const sub = this.funcAt(secIdx, target);
        const secName = this.elf.sections[secIdx]!.name;
        if (!sub || sub.start !== target) {
          throw this.fail(`${where} calls instruction ${target} of '${secName}', which does not start a function`, f.sec.name, (f.start + i) * 8);
        }
        if (sub.entry) {
          throw this.fail(`${where} calls '${sub.name}', an entry program, not a subprogram`, f.sec.name, (f.start + i) * 8);
        }
        let at = placed.get(sub);
        if (at === undefined) {
          at = append(sub);
          relocCode(sub);
        }
        buf.imm[pc] = at - pc - 1;
        if (isFuncAddr) buf.src[pc] = BPF_PSEUDO_FUNC;
      }
    };
    append(entry);
    relocCode(entry);

    for (const { pc, r } of dataRelocs) {
      if (r.kind === 'map') {
        buf.src[pc] = BPF_PSEUDO_MAP_IDX;
        buf.imm[pc] = r.map;
      } else if (r.kind === 'data') {
        // insn[1].imm = insn[0].imm + sym->st_value: the offset into the map's value.
        buf.imm[pc + 1] = (buf.imm[pc]! + r.symOff) | 0;
        buf.src[pc] = BPF_PSEUDO_MAP_IDX_VALUE;
        buf.imm[pc] = r.map;
      }
    }

    const names = this.funcInfoNames();
    const funcs: FuncSym[] = order.map((f) => {
      const start = placed.get(f)!;
      return { name: names.get(`${f.sec.name}:${f.start}`) ?? f.name, start, end: start + f.count };
    });
    return { code: buf.finish(), funcs, ...(this.btfExt ? { lines: this.lines(order, placed) } : {}) };
  }

  private infoNames?: Map<string, string>;

  /** BTF func_info: the FUNC name of each function start, keyed `section:slot`. */
  private funcInfoNames(): Map<string, string> {
    if (this.infoNames) return this.infoNames;
    const names = new Map<string, string>();
    for (const { section, records } of this.btfExt?.funcInfo ?? []) {
      for (const rec of records) {
        const t: BtfType = this.btf!.type(rec.typeId);
        if (t.kind === 'func' && rec.insnOff % 8 === 0) names.set(`${section}:${rec.insnOff / 8}`, t.name);
      }
    }
    this.infoNames = names;
    return names;
  }

  /** adjust_prog_btf_ext_info for line info: each placed function brings its lines along. */
  private lines(order: Func[], placed: Map<Func, number>): LineInfo[] {
    const out: LineInfo[] = [];
    for (const f of order) {
      const records: readonly LineInfoRecord[] = this.btfExt!.lineInfo.find((s) => s.section === f.sec.name)?.records ?? [];
      const base = placed.get(f)!;
      for (const rec of records) {
        if (rec.insnOff % 8 !== 0) throw this.fail(`line info at unaligned offset ${rec.insnOff}`, '.BTF.ext');
        const insn = rec.insnOff / 8;
        if (insn < f.start || insn >= f.start + f.count) continue;
        out.push({ pc: base + insn - f.start, file: rec.file, line: rec.line, col: rec.col, text: rec.text });
      }
    }
    return out.sort((a, b) => a.pc - b.pc);
  }
}

function groupSlots(slots: { map: number; index: number; name: string }[]): Map<number, { index: number; name: string }[]> {
  const byMap = new Map<number, Map<number, string>>();
  for (const s of slots) {
    const m = byMap.get(s.map) ?? new Map<number, string>();
    m.set(s.index, s.name);
    byMap.set(s.map, m);
  }
  return new Map(
    [...byMap].map(([map, m]) => [map, [...m].sort((a, b) => a[0] - b[0]).map(([index, name]) => ({ index, name }))]),
  );
}

/** Growable instruction arrays for laying out a program. */
class InsnBuffer {
  length = 0;
  op = new Uint8Array(64);
  dst = new Uint8Array(64);
  src = new Uint8Array(64);
  off = new Int16Array(64);
  imm = new Int32Array(64);

  /** Appends `code`, returning the slot where it starts. */
  append(code: InsnArrays): number {
    const at = this.length;
    const need = at + code.length;
    if (need > this.op.length) {
      let cap = this.op.length;
      while (cap < need) cap *= 2;
      this.op = grow(this.op, new Uint8Array(cap));
      this.dst = grow(this.dst, new Uint8Array(cap));
      this.src = grow(this.src, new Uint8Array(cap));
      this.off = grow(this.off, new Int16Array(cap));
      this.imm = grow(this.imm, new Int32Array(cap));
    }
    this.op.set(code.op.subarray(0, code.length), at);
    this.dst.set(code.dst.subarray(0, code.length), at);
    this.src.set(code.src.subarray(0, code.length), at);
    this.off.set(code.off.subarray(0, code.length), at);
    this.imm.set(code.imm.subarray(0, code.length), at);
    this.length = need;
    return at;
  }

  finish(): Bytecode {
    const n = this.length;
    return {
      length: n,
      op: this.op.slice(0, n),
      dst: this.dst.slice(0, n),
      src: this.src.slice(0, n),
      off: this.off.slice(0, n),
      imm: this.imm.slice(0, n),
    };
  }
}

function grow<T extends Uint8Array | Int16Array | Int32Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
