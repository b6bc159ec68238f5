// Map definitions of a BPF object, as libbpf reads them: BTF-defined maps in `.maps`
// (parse_btf_map_def), legacy `struct bpf_map_def` in `maps` (libbpf before 1.0,
// iproute2), and one single-entry array per global data section
// (bpf_object__init_global_data_maps).

import { type Btf, type BtfComposite, BtfError, type BtfType, resolveType, sizeOf } from '../btf/index.js';
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from '../maps/uapi.js';
import { BPF_MAP_TYPE, type MapDef } from '../program.js';
import { ElfError, type ElfFile, type ElfSection, SHT_NOBITS, STT_SECTION } from './elf.js';

/** array_map_alloc_check refuses larger values with E2BIG (x86-64: 4K pages, MAX_PAGE_ORDER 10). */
const KMALLOC_MAX_SIZE = 1 << 22;

/** libbpf's LIBBPF_PIN_NONE / LIBBPF_PIN_BY_NAME. */
const PIN_BY_NAME = 1;
/** Page size libbpf rounds ring buffer sizes to (x86-64, arm64 with 4K pages). */
const PAGE_SIZE = 4096;

/** Where a map's definition lives, for resolving relocations against it. */
export interface MapPlacement {
  readonly map: number;
  readonly section: number;
  readonly offset: number;
  readonly size: number;
  /** For BTF-defined maps: the definition struct, whose last member may be `values`. */
  readonly defType?: number;
}

/** A map and the ELF symbol or section it came from. */
export interface ObjectMaps {
  readonly maps: MapDef[];
  /** Maps defined in `.maps` and `maps`, by section offset. */
  readonly placed: MapPlacement[];
  /** Global data maps by section index. */
  readonly dataSections: Map<number, number>;
}

/** True for the sections libbpf turns into global data maps. */
export function isDataSection(s: ElfSection): boolean {
  const n = s.name;
  if (s.type === SHT_NOBITS) return n === '.bss' || n.startsWith('.bss.');
  return n === '.data' || n.startsWith('.data.') || n === '.rodata' || n.startsWith('.rodata.');
}

/** Builds the maps in libbpf's order: legacy, BTF-defined, then global data by section index. */
export function collectMaps(elf: ElfFile, btf: Btf | undefined, legacy?: ElfSection, btfMaps?: ElfSection): ObjectMaps {
  const out: ObjectMaps = { maps: [], placed: [], dataSections: new Map() };
  if (legacy) legacyMaps(elf, legacy, out);
  if (btfMaps) {
    if (!btf) throw new ElfError(elf.file, 'BTF-defined maps need a .BTF section', btfMaps.name);
    definedMaps(elf, btf, btfMaps, out);
  }
  for (const s of elf.sections) {
    if (!isDataSection(s) || s.size === 0) continue;
    if (s.size > KMALLOC_MAX_SIZE) {
      throw new ElfError(elf.file, `global data of ${s.size} bytes; the kernel refuses array values over 4 MiB (KMALLOC_MAX_SIZE)`, s.name);
    }
    const rodata = s.name.startsWith('.rodata');
    const datasec = btf?.find(s.name, 'datasec');
    let flags = rodata ? BPF_F_RDONLY_PROG : 0;
    // libbpf's map_is_mmapable: skeletons mmap the map when a global variable is in it.
    if (datasec?.kind === 'datasec' && datasec.vars.some((v) => isGlobalVar(btf!.type(v.type)))) flags |= BPF_F_MMAPABLE;
    out.dataSections.set(s.index, out.maps.length);
    out.maps.push({
      name: s.name,
      type: BPF_MAP_TYPE.array,
      keySize: 4,
      valueSize: s.size,
      maxEntries: 1,
      flags,
      ...(datasec ? { btfValueTypeId: datasec.id } : {}),
      initialValue: s.type === SHT_NOBITS ? new Uint8Array(s.size) : new Uint8Array(s.data),
      globalData: true,
    });
  }
  return out;
}

function isGlobalVar(t: BtfType): boolean {
  return t.kind === 'var' && t.linkage !== 'static';
}

/** struct bpf_map_def { type, key_size, value_size, max_entries, map_flags }, one per symbol. */
function legacyMaps(elf: ElfFile, sec: ElfSection, out: ObjectMaps): void {
  const syms = elf.symbols
    .filter((s) => s.shndx === sec.index && s.type !== STT_SECTION && s.name !== '')
    .sort((a, b) => a.value - b.value);
  if (syms.length === 0) {
    if (sec.size > 0) throw new ElfError(elf.file, 'legacy maps section has no map symbols', sec.name);
    return;
  }
  const dv = new DataView(sec.data.buffer, sec.data.byteOffset, sec.data.byteLength);
  const defSize = Math.floor(sec.size / syms.length);
  for (const sym of syms) {
    const size = sym.size || defSize;
    if (size < 4 || sym.value + size > sec.data.length) {
      throw new ElfError(elf.file, `legacy map '${sym.name}' definition out of range`, sec.name, sym.value);
    }
    // Shorter definitions (no map_flags) leave the rest zero; longer ones (iproute2's id,
    // pinning, inner_id) extend this prefix, and the extra fields are not used here.
    const u32 = (i: number): number => (4 * (i + 1) <= size ? dv.getUint32(sym.value + 4 * i, true) : 0);
    out.placed.push({ map: out.maps.length, section: sec.index, offset: sym.value, size });
    out.maps.push(finish({ name: sym.name, type: u32(0), keySize: u32(1), valueSize: u32(2), maxEntries: u32(3), flags: u32(4) }));
  }
}

/** libbpf's bpf_object__init_user_btf_maps over the DATASEC `.maps`. */
function definedMaps(elf: ElfFile, btf: Btf, sec: ElfSection, out: ObjectMaps): void {
  const datasec = btf.find('.maps', 'datasec');
  if (datasec?.kind !== 'datasec') throw new ElfError(elf.file, "BTF has no DATASEC '.maps'", sec.name);
  datasec.vars.forEach((vi, i) => {
    const v = btf.type(vi.type);
    const fail = (what: string): ElfError => new ElfError(elf.file, `map '${v.name || `#${i}`}': ${what}`, sec.name, vi.offset);
    if (v.name === '') throw fail('empty name');
    if (vi.offset + vi.size > sec.size) throw fail('definition out of the section');
    if (v.kind !== 'var') throw fail(`unexpected ${v.kind} in DATASEC`);
    if (v.linkage !== 'global') throw fail(`unsupported ${v.linkage} linkage`);
    const def = btf.type(resolveType(btf, v.type));
    if (def.kind !== 'struct') throw fail(`definition is a ${def.kind}, not a struct`);
    if (def.size > vi.size) throw fail('definition larger than its variable');
    const parsed = parseMapDef(btf, v.name, def, false, fail);
    out.placed.push({ map: out.maps.length, section: sec.index, offset: vi.offset, size: vi.size, defType: def.id });
    out.maps.push(parsed);
  });
}

/** parse_btf_map_def: each member of the definition struct is one attribute. */
function parseMapDef(
  btf: Btf,
  name: string,
  def: BtfComposite,
  inner: boolean,
  fail: (what: string) => ElfError,
): MapDef {
  let type = 0;
  let keySize = 0;
  let valueSize = 0;
  let maxEntries = 0;
  let flags = 0;
  let btfKeyTypeId: number | undefined;
  let btfValueTypeId: number | undefined;
  let innerDef: MapDef | undefined;
  const size = (what: string, prev: number, sz: number): number => {
    if (prev !== 0 && prev !== sz) throw fail(`conflicting ${what} size ${prev} != ${sz}`);
    return sz;
  };
  const sized = (id: number): number => {
    try {
      return sizeOf(btf, id);
    } catch (e) {
      if (e instanceof BtfError) throw fail(`cannot size type [${id}]: ${e.what}`);
      throw e;
    }
  };
  // __uint(name, val) is `int (*name)[val]`: the value is the array's length.
  const intAttr = (m: { name: string; type: number }): number => {
    const p = btf.type(resolveType(btf, m.type));
    if (p.kind !== 'ptr') throw fail(`attribute '${m.name}' is a ${p.kind}, expected a pointer`);
    const arr = btf.type(p.type);
    if (arr.kind !== 'array') throw fail(`attribute '${m.name}' points to a ${arr.kind}, expected an array`);
    return arr.nelems;
  };
  // __type(name, val) is `typeof(val) *name`: the pointee is the type.
  const typeAttr = (m: { name: string; type: number }): number => {
    const p = btf.type(m.type);
    if (p.kind !== 'ptr') throw fail(`'${m.name}' is a ${p.kind}, expected a pointer`);
    return p.type;
  };
  def.members.forEach((m, i) => {
    switch (m.name) {
      case 'type':
        type = intAttr(m);
        break;
      case 'max_entries':
        maxEntries = intAttr(m);
        break;
      case 'map_flags':
        flags = intAttr(m);
        break;
      case 'numa_node':
      case 'map_extra':
        intAttr(m);
        break;
      case 'key_size':
        keySize = size('key', keySize, intAttr(m));
        break;
      case 'value_size':
        valueSize = size('value', valueSize, intAttr(m));
        break;
      case 'key':
        btfKeyTypeId = typeAttr(m);
        keySize = size('key', keySize, sized(btfKeyTypeId));
        break;
      case 'value':
        btfValueTypeId = typeAttr(m);
        valueSize = size('value', valueSize, sized(btfValueTypeId));
        break;
      case 'values': {
        const mapInMap = type === BPF_MAP_TYPE.array_of_maps || type === BPF_MAP_TYPE.hash_of_maps;
        const progArray = type === BPF_MAP_TYPE.prog_array;
        if (inner) throw fail('multi-level inner maps are not supported');
        if (i !== def.members.length - 1) throw fail("'values' must be the last member");
        if (!mapInMap && !progArray) throw fail("'values' needs a map-in-map or prog_array type");
        valueSize = size('value', valueSize, 4);
        const arr = btf.type(m.type);
        if (arr.kind !== 'array' || arr.nelems !== 0) throw fail("'values' is not a zero-sized array");
        const ptr = btf.type(resolveType(btf, arr.type));
        if (ptr.kind !== 'ptr') throw fail(`'values' holds a ${ptr.kind}, expected pointers`);
        const target = btf.type(resolveType(btf, ptr.type));
        if (progArray) {
          if (target.kind !== 'func_proto') throw fail(`prog_array 'values' points to a ${target.kind}`);
        } else {
          if (target.kind !== 'struct') throw fail(`inner map definition is a ${target.kind}`);
          const innerName = `${name}.inner`;
          innerDef = parseMapDef(btf, innerName, target, true, (what) => fail(`inner map: ${what}`));
        }
        break;
      }
      case 'pinning': {
        if (inner) throw fail('an inner map cannot be pinned');
        const pin = intAttr(m);
        if (pin !== 0 && pin !== PIN_BY_NAME) throw fail(`invalid pinning value ${pin}`);
        break;
      }
      default:
        // libbpf is strict by default (relaxed_maps off).
        throw fail(`unknown attribute '${m.name}'`);
    }
  });
  if (type === BPF_MAP_TYPE.unspec) throw fail("map type isn't specified");
  return finish({
    name, type, keySize, valueSize, maxEntries, flags,
    ...(btfKeyTypeId !== undefined ? { btfKeyTypeId } : {}),
    ...(btfValueTypeId !== undefined ? { btfValueTypeId } : {}),
    ...(innerDef ? { inner: innerDef } : {}),
  });
}

/** fill_map_from_def's ring buffer rule: max_entries becomes a power-of-2 multiple of the page size. */
function finish(def: MapDef): MapDef {
  if ((def.type === BPF_MAP_TYPE.ringbuf || def.type === BPF_MAP_TYPE.user_ringbuf) && def.maxEntries !== 0) {
    const sz = def.maxEntries;
    const pages = sz / PAGE_SIZE;
    if (!(sz % PAGE_SIZE === 0 && (pages & (pages - 1)) === 0)) {
      for (let mul = 1; mul <= Math.floor(0xffffffff / PAGE_SIZE); mul *= 2) {
        if (mul * PAGE_SIZE > sz) return { ...def, maxEntries: mul * PAGE_SIZE };
      }
    }
  }
  return def;
}

/** The byte offset of the last member (`values`) of a BTF map definition. */
export function valuesOffset(btf: Btf, defType: number): number | undefined {
  const def = btf.type(defType);
  if (def.kind !== 'struct' || def.members.length === 0) return undefined;
  const last = def.members[def.members.length - 1]!;
  return last.name === 'values' ? Math.floor(last.bitOffset / 8) : undefined;
}
