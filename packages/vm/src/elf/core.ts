// CO-RE relocations (libbpf's relo_core.c) resolved against the object's own BTF.
// Rewind runs without kernel BTF, so the target type of every relocation is the local
// type itself: the computed value is what libbpf would compute for a kernel whose types
// equal the program's, and it is checked against the value clang put in the instruction,
// as bpf_core_patch_insn does before patching.

import {
  type Btf,
  BtfError,
  type BtfType,
  BPF_CORE_ENUMVAL_EXISTS,
  BPF_CORE_ENUMVAL_VALUE,
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_FIELD_BYTE_SIZE,
  BPF_CORE_FIELD_EXISTS,
  BPF_CORE_FIELD_LSHIFT_U64,
  BPF_CORE_FIELD_RSHIFT_U64,
  BPF_CORE_FIELD_SIGNED,
  BPF_CORE_TYPE_EXISTS,
  BPF_CORE_TYPE_ID_LOCAL,
  BPF_CORE_TYPE_ID_TARGET,
  BPF_CORE_TYPE_MATCHES,
  BPF_CORE_TYPE_SIZE,
  type CoreRelo,
  resolveType,
  sizeOf,
} from '../btf/index.js';
import { BPF_ALU, BPF_ALU64, BPF_K, BPF_LD, BPF_LDX, BPF_ST, BPF_STX, cls, LDDW, srcBit } from '../isa.js';

/** Mutable decoded instructions (the Bytecode arrays of one function). */
export interface InsnArrays {
  readonly length: number;
  readonly op: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly off: Int16Array;
  readonly imm: Int32Array;
}

/** The value a relocation resolves to, and whether the compiled instruction must already hold it. */
export interface CoreResult {
  readonly value: bigint;
  readonly validate: boolean;
}

/** libbpf's BPF_CORE_SPEC_MAX_LEN. */
const SPEC_MAX_LEN = 64;

/** Resolves a CO-RE relocation with the local types as target (bpf_core_calc_relo_insn). */
export function resolveCoreRelo(btf: Btf, relo: CoreRelo): CoreResult {
  const bad = (what: string): BtfError => new BtfError(btf.file, `CO-RE relocation of [${relo.typeId}] '${relo.access}': ${what}`, '.BTF.ext');
  if (relo.access === '' || relo.access.startsWith(':')) throw bad('empty access string');
  const spec = relo.access.split(':').map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (spec.some((n) => !Number.isSafeInteger(n))) throw bad('malformed access string');
  if (spec.length > SPEC_MAX_LEN) throw bad('access string too long');
  const type = (id: number): BtfType => btf.type(resolveType(btf, id));

  switch (relo.kind) {
    case BPF_CORE_TYPE_ID_LOCAL:
    case BPF_CORE_TYPE_ID_TARGET:
    case BPF_CORE_TYPE_EXISTS:
    case BPF_CORE_TYPE_MATCHES:
    case BPF_CORE_TYPE_SIZE:
      if (relo.access !== '0') throw bad('type-based relocation needs access string "0"');
      // Type ids may be renumbered by linking, so libbpf never checks them against the insn.
      if (relo.kind === BPF_CORE_TYPE_ID_LOCAL || relo.kind === BPF_CORE_TYPE_ID_TARGET) {
        return { value: BigInt(relo.typeId), validate: false };
      }
      if (relo.kind === BPF_CORE_TYPE_SIZE) return { value: BigInt(sizeOf(btf, relo.typeId)), validate: true };
      return { value: 1n, validate: true };

    case BPF_CORE_ENUMVAL_EXISTS:
    case BPF_CORE_ENUMVAL_VALUE: {
      const t = type(relo.typeId);
      const idx = spec[0]!;
      if ((t.kind !== 'enum' && t.kind !== 'enum64') || spec.length > 1 || idx >= t.values.length) {
        throw bad('not an enumerator of an enum');
      }
      if (relo.kind === BPF_CORE_ENUMVAL_EXISTS) return { value: 1n, validate: true };
      return { value: BigInt.asUintN(64, t.values[idx]!.value), validate: true };
    }

    case BPF_CORE_FIELD_BYTE_OFFSET:
    case BPF_CORE_FIELD_BYTE_SIZE:
    case BPF_CORE_FIELD_EXISTS:
    case BPF_CORE_FIELD_SIGNED:
    case BPF_CORE_FIELD_LSHIFT_U64:
    case BPF_CORE_FIELD_RSHIFT_U64:
      return fieldRelo(btf, relo, spec, bad);

    default:
      throw bad(`unknown relocation kind ${relo.kind}`);
  }
}

/** bpf_core_parse_spec then bpf_core_calc_field_relo for a field-based relocation. */
function fieldRelo(btf: Btf, relo: CoreRelo, spec: number[], bad: (what: string) => BtfError): CoreResult {
  let id = resolveType(btf, relo.typeId);
  let bitOffset = spec[0]! * sizeOf(btf, id) * 8;
  // The last accessor: a named member (of composite `owner`) or an array element / the root.
  let member: { owner: number; idx: number } | undefined;
  for (let i = 1; i < spec.length; i++) {
    const t = btf.type(resolveType(btf, id));
    const idx = spec[i]!;
    if (t.kind === 'struct' || t.kind === 'union') {
      const m = t.members[idx];
      if (m === undefined) throw bad(`member ${idx} out of range`);
      bitOffset += m.bitOffset;
      if (m.name !== '') member = { owner: t.id, idx };
      id = m.type;
    } else if (t.kind === 'array') {
      // A zero-length last member is a flexible array and any index is allowed.
      const owner = member === undefined ? undefined : btf.type(member.owner);
      const flex = t.nelems === 0 && owner !== undefined && 'members' in owner && member!.idx === owner.members.length - 1;
      if (!flex && idx >= t.nelems) throw bad(`index ${idx} out of bounds of array [${t.id}]`);
      const elem = resolveType(btf, t.type);
      member = undefined;
      bitOffset += idx * sizeOf(btf, elem) * 8;
      id = elem;
    } else {
      throw bad(`accessor ${i} indexes into a ${t.kind}`);
    }
  }
  if (relo.kind === BPF_CORE_FIELD_EXISTS) return { value: 1n, validate: true };
  if (!Number.isSafeInteger(bitOffset) || bitOffset > 0xffffffff) throw bad('field offset out of range');

  if (member === undefined) {
    if (bitOffset % 8 !== 0) throw bad('array element is not byte aligned');
    // The access ends at an array element or the root: only offset and size make sense.
    if (relo.kind === BPF_CORE_FIELD_BYTE_OFFSET) return { value: BigInt(bitOffset / 8), validate: true };
    if (relo.kind === BPF_CORE_FIELD_BYTE_SIZE) return { value: BigInt(sizeOf(btf, id)), validate: true };
    throw bad('relocation kind cannot apply to an array element');
  }
  const owner = btf.type(member.owner) as Extract<BtfType, { kind: 'struct' | 'union' }>;
  const m = owner.members[member.idx]!;
  const mt = btf.type(resolveType(btf, m.type));
  let bitSize = m.bitSize;
  const bitfield = bitSize > 0;
  let byteSize: number;
  let byteOff: number;
  if (bitfield) {
    if (!('size' in mt)) throw bad(`bitfield of type ${mt.kind}`);
    // The smallest naturally aligned load covering the bitfield.
    byteSize = mt.size;
    if (byteSize === 0) throw bad('bitfield of a zero-sized type');
    byteOff = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    while (bitOffset + bitSize - byteOff * 8 > byteSize * 8) {
      if (byteSize >= 8) throw bad('bitfield cannot be read with one 64-bit load');
      byteSize *= 2;
      byteOff = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    }
  } else {
    if (bitOffset % 8 !== 0) throw bad('member is not byte aligned');
    byteSize = sizeOf(btf, m.type);
    byteOff = bitOffset / 8;
    bitSize = byteSize * 8;
  }
  // Bitfield offsets and sizes are ambiguous (clang may pick another load), so libbpf
  // only checks them for non-bitfields; signedness and the right shift are never ambiguous.
  switch (relo.kind) {
    case BPF_CORE_FIELD_BYTE_OFFSET:
      return { value: BigInt(byteOff), validate: !bitfield };
    case BPF_CORE_FIELD_BYTE_SIZE:
      return { value: BigInt(byteSize), validate: !bitfield };
    case BPF_CORE_FIELD_SIGNED: {
      const signed = ((mt.kind === 'enum' || mt.kind === 'enum64') && mt.signed) || (mt.kind === 'int' && mt.signed);
      return { value: signed ? 1n : 0n, validate: true };
    }
    case BPF_CORE_FIELD_LSHIFT_U64:
      return { value: BigInt(64 - (bitOffset + bitSize - byteOff * 8)), validate: !bitfield };
    default:
      return { value: BigInt(64 - bitSize), validate: true };
  }
}

/**
 * Patches instruction `pc` of `code` with a resolved relocation, as bpf_core_patch_insn:
 * the immediate of an ALU op, the offset of a load/store, or the 64-bit immediate of lddw.
 * Returns why the instruction does not fit the relocation, or undefined once patched.
 */
export function patchCoreInsn(code: InsnArrays, pc: number, res: CoreResult): string | undefined {
  const op = code.op[pc]!;
  const asU64 = (v: number): bigint => BigInt.asUintN(64, BigInt(v));
  switch (cls(op)) {
    case BPF_ALU:
    case BPF_ALU64:
      if (srcBit(op) !== BPF_K) return 'ALU instruction with a register operand';
      if (res.validate && asU64(code.imm[pc]!) !== res.value) {
        return `instruction holds ${code.imm[pc]}, expected ${res.value}`;
      }
      code.imm[pc] = Number(BigInt.asIntN(32, res.value));
      return undefined;
    case BPF_LDX:
    case BPF_ST:
    case BPF_STX:
      if (res.validate && asU64(code.off[pc]!) !== res.value) {
        return `instruction offset is ${code.off[pc]}, expected ${res.value}`;
      }
      if (res.value > 0x7fffn) return `offset ${res.value} does not fit an instruction`;
      code.off[pc] = Number(res.value);
      return undefined;
    case BPF_LD: {
      if (op !== LDDW || pc + 1 >= code.length || code.src[pc] !== 0 || code.off[pc] !== 0 ||
          code.op[pc + 1] !== 0 || code.dst[pc + 1] !== 0 || code.src[pc + 1] !== 0 || code.off[pc + 1] !== 0) {
        return 'lddw of unexpected form';
      }
      const imm = (BigInt(code.imm[pc + 1]! >>> 0) << 32n) | BigInt(code.imm[pc]! >>> 0);
      if (res.validate && imm !== res.value) return `instruction holds ${imm}, expected ${res.value}`;
      code.imm[pc] = Number(BigInt.asIntN(32, res.value));
      code.imm[pc + 1] = Number(BigInt.asIntN(32, res.value >> 32n));
      return undefined;
    }
    default:
      return `instruction of class ${cls(op)} cannot be relocated`;
  }
}
