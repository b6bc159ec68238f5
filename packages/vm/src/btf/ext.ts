// `.BTF.ext`: per-section function info, line info and CO-RE relocation records
// (Documentation/bpf/llvm_reloc.rst, libbpf's btf_ext__new and struct btf_ext_header).
// Instruction offsets are in bytes from the start of the ELF section, as clang emits them.

import { type Btf, BtfError } from './btf.js';

/** enum bpf_core_relo_kind (include/uapi/linux/bpf.h). */
export const BPF_CORE_FIELD_BYTE_OFFSET = 0;
export const BPF_CORE_FIELD_BYTE_SIZE = 1;
export const BPF_CORE_FIELD_EXISTS = 2;
export const BPF_CORE_FIELD_SIGNED = 3;
export const BPF_CORE_FIELD_LSHIFT_U64 = 4;
export const BPF_CORE_FIELD_RSHIFT_U64 = 5;
export const BPF_CORE_TYPE_ID_LOCAL = 6;
export const BPF_CORE_TYPE_ID_TARGET = 7;
export const BPF_CORE_TYPE_EXISTS = 8;
export const BPF_CORE_TYPE_SIZE = 9;
export const BPF_CORE_ENUMVAL_EXISTS = 10;
export const BPF_CORE_ENUMVAL_VALUE = 11;
export const BPF_CORE_TYPE_MATCHES = 12;

/** struct bpf_func_info: the function whose BTF FUNC is `typeId` starts at `insnOff`. */
export interface FuncInfo {
  readonly insnOff: number;
  readonly typeId: number;
}

/** struct bpf_line_info with its strings looked up: the C source line an instruction came from. */
export interface LineInfoRecord {
  readonly insnOff: number;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The source line's text, which clang stores in the BTF string section. */
  readonly text: string;
}

/** struct bpf_core_relo: a CO-RE relocation of the instruction at `insnOff`. */
export interface CoreRelo {
  readonly insnOff: number;
  /** The local root type. */
  readonly typeId: number;
  /** The access string: "0:1:2" indexes into the root type, "0" for type-based kinds. */
  readonly access: string;
  /** enum bpf_core_relo_kind (BPF_CORE_*). */
  readonly kind: number;
}

/** The records of one ELF section. */
export interface BtfExtSection<T> {
  readonly section: string;
  readonly records: readonly T[];
}

export interface BtfExt {
  readonly funcInfo: readonly BtfExtSection<FuncInfo>[];
  readonly lineInfo: readonly BtfExtSection<LineInfoRecord>[];
  readonly coreRelos: readonly BtfExtSection<CoreRelo>[];
}

const HDR_MIN = 24; // up to line_info_len; core_relo_off/len follow when hdr_len >= 32

/** Parses a `.BTF.ext` section; names and strings are looked up in `btf`. */
export function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  const file = btf.file;
  const err = (what: string, offset?: number): BtfError => new BtfError(file, what, '.BTF.ext', offset);
  if (bytes.length < HDR_MIN) throw err(`truncated header (${bytes.length} bytes, need ${HDR_MIN})`, 0);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint16(0, true);
  if (magic === 0x9feb) throw err('big-endian BTF.ext is not supported', 0);
  if (magic !== 0xeb9f) throw err(`bad magic 0x${magic.toString(16)} (expected 0xeb9f)`, 0);
  const version = dv.getUint8(2);
  if (version !== 1) throw err(`unsupported version ${version}`, 2);
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < HDR_MIN || hdrLen > bytes.length) throw err(`bad header length ${hdrLen}`, 4);
  const str = (off: number, at: number): string => {
    try {
      return btf.str(off);
    } catch {
      throw err(`string offset 0x${off.toString(16)} out of range`, at);
    }
  };
  const typeId = (id: number, at: number): number => {
    if (id >= btf.types.length) throw err(`type id ${id} out of range`, at);
    return id;
  };

  // libbpf's btf_ext_setup_info: a u32 record size, then per section
  // { sec_name_off, num_info, num_info records }.
  function segment<T>(
    hdrField: number,
    what: string,
    minRecSize: number,
    read: (at: number) => T,
  ): BtfExtSection<T>[] {
    if (hdrField + 8 > hdrLen) return [];
    const off = dv.getUint32(hdrField, true);
    const len = dv.getUint32(hdrField + 4, true);
    if (len === 0) return [];
    if (off % 4 !== 0) throw err(`${what} offset 0x${off.toString(16)} is not 4-byte aligned`, hdrField);
    const start = hdrLen + off;
    const end = start + len;
    if (end > bytes.length) throw err(`${what} [0x${off.toString(16)}, +${len}) out of range`, hdrField);
    if (len < 4) throw err(`${what} is too short for its record size`, start);
    const recSize = dv.getUint32(start, true);
    if (recSize < minRecSize || recSize % 4 !== 0) throw err(`${what} has bad record size ${recSize}`, start);
    const sections: BtfExtSection<T>[] = [];
    let p = start + 4;
    while (p < end) {
      if (p + 8 > end) throw err(`${what} section header is truncated`, p);
      const section = str(dv.getUint32(p, true), p);
      const n = dv.getUint32(p + 4, true);
      if (n === 0) throw err(`${what} section '${section}' has no records`, p);
      p += 8;
      if (n > (end - p) / recSize) throw err(`${what} section '${section}' has ${n} records, more than fit`, p - 8);
      const records: T[] = [];
      for (let i = 0; i < n; i++, p += recSize) records.push(read(p));
      sections.push({ section, records });
    }
    return sections;
  }

  const funcInfo = segment<FuncInfo>(8, 'func_info', 8, (at) => ({
    insnOff: dv.getUint32(at, true),
    typeId: typeId(dv.getUint32(at + 4, true), at + 4),
  }));
  const lineInfo = segment<LineInfoRecord>(16, 'line_info', 16, (at) => {
    const lineCol = dv.getUint32(at + 12, true);
    return {
      insnOff: dv.getUint32(at, true),
      file: str(dv.getUint32(at + 4, true), at + 4),
      text: str(dv.getUint32(at + 8, true), at + 8),
      // BPF_LINE_INFO_LINE_NUM / BPF_LINE_INFO_LINE_COL: 22 bits of line over 10 bits of column.
      line: lineCol >>> 10,
      col: lineCol & 0x3ff,
    };
  });
  const coreRelos = segment<CoreRelo>(24, 'core_relo', 16, (at) => ({
    insnOff: dv.getUint32(at, true),
    typeId: typeId(dv.getUint32(at + 4, true), at + 4),
    access: str(dv.getUint32(at + 8, true), at + 8),
    kind: dv.getUint32(at + 12, true),
  }));
  return { funcInfo, lineInfo, coreRelos };
}
