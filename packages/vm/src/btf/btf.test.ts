import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseElf } from '../elf/elf.js';
import { type Btf, BtfError, type BtfType, fieldsOf, parseBtf, resolveType, sizeOf } from './btf.js';

const FIXTURES = new URL('../elf/fixtures/', import.meta.url);
const OBJECTS = ['xdp_flow', 'tc_subprog', 'legacy_maps', 'loop_cb', 'prog_array', 'core', 'kinds'];

function sectionOf(name: string, section: string): Uint8Array {
  // A copy: Node's Buffer.slice would alias the file bytes the mutations below change.
  const elf = parseElf(new Uint8Array(readFileSync(new URL(`${name}.o`, FIXTURES))), `${name}.o`);
  return elf.sections.find((s) => s.name === section)!.data.slice();
}

function btfOf(name: string): Btf {
  return parseBtf(sectionOf(name, '.BTF'), `${name}.o`);
}

/** A type as `bpftool btf dump file X.o -j` prints it (tools/bpf/bpftool/btf.c). */
function asBpftool(t: BtfType): Record<string, unknown> {
  const name = t.name === '' ? '(anon)' : t.name;
  const head = { id: t.id, kind: t.kind.toUpperCase(), name };
  switch (t.kind) {
    case 'void':
      return head;
    case 'int':
      return {
        ...head, size: t.size, bits_offset: t.bitOffset, nr_bits: t.bits,
        encoding: t.signed ? 'SIGNED' : t.char ? 'CHAR' : t.bool ? 'BOOL' : '(none)',
      };
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
      return { ...head, type_id: t.type };
    case 'array':
      return { ...head, type_id: t.type, index_type_id: t.indexType, nr_elems: t.nelems };
    case 'struct':
    case 'union':
      return {
        ...head, size: t.size, vlen: t.members.length,
        members: t.members.map((m) => ({
          name: m.name === '' ? '(anon)' : m.name, type_id: m.type, bits_offset: m.bitOffset,
          ...(m.bitSize ? { bitfield_size: m.bitSize } : {}),
        })),
      };
    case 'enum':
    case 'enum64':
      return {
        ...head, encoding: t.signed ? 'SIGNED' : 'UNSIGNED', size: t.size, vlen: t.values.length,
        values: t.values.map((v) => ({ name: v.name, val: Number(v.value) })),
      };
    case 'fwd':
      return { ...head, fwd_kind: t.union ? 'union' : 'struct' };
    case 'func':
      return { ...head, type_id: t.type, linkage: t.linkage };
    case 'func_proto':
      return {
        ...head, ret_type_id: t.type, vlen: t.params.length,
        params: t.params.map((p) => ({ name: p.name === '' ? '(anon)' : p.name, type_id: p.type })),
      };
    case 'var':
      return { ...head, type_id: t.type, linkage: t.linkage };
    case 'datasec':
      return {
        ...head, size: t.size, vlen: t.vars.length,
        vars: t.vars.map((v) => ({ type_id: v.type, offset: v.offset, size: v.size })),
      };
    case 'float':
      return { ...head, size: t.size };
    case 'decl_tag':
      return { ...head, type_id: t.type, component_idx: t.componentIdx };
  }
}

describe('parseBtf on clang-19 objects', () => {
  test.each(OBJECTS)('%s.o: every type equals bpftool btf dump', (name) => {
    const btf = btfOf(name);
    const dump = JSON.parse(readFileSync(new URL(`${name}.btf.json`, FIXTURES), 'utf8')) as { types: unknown[] };
    expect(btf.types.slice(1).map(asBpftool)).toEqual(dump.types);
  });

  test('the zoo object holds every kind clang emits', () => {
    const kinds = new Set([...OBJECTS].flatMap((n) => btfOf(n).types.map((t) => t.kind)));
    expect([...kinds].sort()).toEqual([
      'array', 'const', 'datasec', 'decl_tag', 'enum', 'enum64', 'float', 'func', 'func_proto', 'fwd', 'int',
      'ptr', 'restrict', 'struct', 'type_tag', 'typedef', 'union', 'var', 'void', 'volatile',
    ]);
  });
});

describe('type utilities', () => {
  const btf = btfOf('xdp_flow');
  const id = (name: string, kind?: BtfType['kind']): number => btf.find(name, kind)!.id;

  test('resolveType skips typedefs and qualifiers', () => {
    expect(btf.type(resolveType(btf, id('__u32'))).name).toBe('unsigned int');
    // max_len is `const volatile __u32`.
    const maxLen = btf.find('max_len', 'var')!;
    expect(maxLen.kind === 'var' && btf.type(resolveType(btf, maxLen.type)).name).toBe('unsigned int');
    expect(resolveType(btf, id('flow_key'))).toBe(id('flow_key'));
  });

  test('sizeOf follows C layout', () => {
    // struct flow_key { __u32 saddr; __u16 dport; __u8 proto; } pads to 8.
    expect(sizeOf(btf, id('flow_key'))).toBe(8);
    // 2 x u64, enum, char[8], then one u32 of bitfields.
    expect(sizeOf(btf, id('flow_stats'))).toBe(32);
    expect(sizeOf(btf, id('__u16'))).toBe(2);
    const stats = btf.type(id('flow_stats'));
    const tag = stats.kind === 'struct' ? stats.members.find((m) => m.name === 'tag')! : undefined;
    expect(sizeOf(btf, tag!.type)).toBe(8);
    const ptr = btf.types.find((t) => t.kind === 'ptr')!;
    expect(sizeOf(btf, ptr.id)).toBe(8);
  });

  test('sizeOf rejects types without a size', () => {
    expect(() => sizeOf(btf, id('xdp_count', 'func'))).toThrow(BtfError);
    expect(() => sizeOf(btf, 0)).toThrow(/has no size/);
  });

  test('fieldsOf gives bit offsets and bitfield widths', () => {
    expect(fieldsOf(btf, id('flow_stats')).map((f) => [f.name, f.bitOffset, f.bitSize])).toEqual([
      ['packets', 0, 0],
      ['bytes', 64, 0],
      ['last', 128, 0],
      ['tag', 160, 0],
      ['seen', 224, 1],
      ['kind', 225, 3],
      ['delta', 228, 12],
    ]);
    expect(() => fieldsOf(btf, id('__u32'))).toThrow(/not a struct or union/);
  });

  test('fieldsOf reads bitfields encoded in the INT (pre kind_flag BTF)', () => {
    // struct s { int a; unsigned int b:3 } with b's type an INT of 3 bits at offset 2.
    const b = buildBtf(
      [
        ...intType(1, 4, 32, 0, true), // [1] int
        ...intType(0, 4, 3, 2, false), // [2] 3-bit int at bit 2
        ...structType(5, 8, [[7, 1, 0], [9, 2, 32]]), // [3] struct s
      ],
      '\0int\0s\0a\0b\0',
    );
    expect(fieldsOf(b, 3).map((f) => [f.name, f.bitOffset, f.bitSize])).toEqual([['a', 0, 0], ['b', 34, 3]]);
  });
});

describe('parseBtf rejects malformed input', () => {
  const good = sectionOf('xdp_flow', '.BTF');
  const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const mutate = (f: (b: Uint8Array, d: DataView) => void): Uint8Array => {
    const b = good.slice();
    f(b, dv(b));
    return b;
  };
  const hdrLen = dv(good).getUint32(4, true);
  const typeStart = hdrLen + dv(good).getUint32(8, true);

  test('truncated header', () => {
    expect(() => parseBtf(good.subarray(0, 10), 'x.o')).toThrow('x.o: truncated header (10 bytes, need 24) (section .BTF, offset 0x0)');
  });
  test('bad magic and big-endian BTF', () => {
    expect(() => parseBtf(mutate((b) => (b[0] = 0)), 'x.o')).toThrow(/bad magic/);
    expect(() => parseBtf(mutate((_, d) => d.setUint16(0, 0xeb9f, false)), 'x.o')).toThrow(/big-endian BTF is not supported/);
  });
  test('unsupported version', () => {
    expect(() => parseBtf(mutate((b) => (b[2] = 2)), 'x.o')).toThrow(/unsupported version 2/);
  });
  test('sections out of range', () => {
    expect(() => parseBtf(mutate((_, d) => d.setUint32(12, 0x100000, true)), 'x.o')).toThrow(/type section .* out of range/);
    expect(() => parseBtf(mutate((_, d) => d.setUint32(20, 0x100000, true)), 'x.o')).toThrow(/string section .* out of range/);
    expect(() => parseBtf(good.subarray(0, good.length - 1), 'x.o')).toThrow(/out of range/);
  });
  test('a name offset out of the string section names the type', () => {
    const e = catchBtf(() => parseBtf(mutate((_, d) => d.setUint32(typeStart, 0xfffff, true)), 'x.o'));
    expect(e.message).toBe(`x.o: name offset 0xfffff out of range (section .BTF, offset 0x${typeStart.toString(16)})`);
  });
  test('unknown kind', () => {
    expect(() => parseBtf(mutate((_, d) => d.setUint32(typeStart + 4, 31 << 24, true)), 'x.o')).toThrow(/type \[1\] has unknown kind 31/);
  });
  test('a reference to a type that does not exist', () => {
    // Type [1] of xdp_flow.o is a PTR: point it past the last type.
    expect(() => parseBtf(mutate((_, d) => d.setUint32(typeStart + 8, 9999, true)), 'x.o')).toThrow(/type \[1\] refers to type id 9999 out of range/);
  });
  test('a record cut short by the end of the type section', () => {
    expect(buildBtf(structType(0, 4, [[0, 0, 0]]), '\0').types).toHaveLength(2);
    expect(() => buildBtf(structType(0, 4, [[0, 0, 0]]).slice(0, 4), '\0')).toThrow('built.o: type [1] struct is truncated (section .BTF, offset 0x18)');
  });
  test('string section without its leading NUL', () => {
    expect(() => buildBtf(intType(1, 4, 32, 0, true), 'xint\0')).toThrow(/string section must start and end with a NUL/);
  });
  test('typedef loops are caught by resolveType and sizeOf', () => {
    // [1] typedef a -> [2], [2] typedef b -> [1]
    const b = buildBtf([...refType(8, 1, 2), ...refType(8, 3, 1)], '\0a\0b\0');
    expect(() => resolveType(b, 1)).toThrow(/loop/);
    expect(() => sizeOf(b, 1)).toThrow(BtfError);
  });
});

function catchBtf(f: () => unknown): BtfError {
  try {
    f();
  } catch (e) {
    if (e instanceof BtfError) return e;
    throw e;
  }
  throw new Error('expected a BtfError');
}

// A tiny BTF writer for cases clang does not emit: types as u32 words, strings as text.
function buildBtf(words: number[], strings: string): Btf {
  const str = new TextEncoder().encode(strings);
  const out = new Uint8Array(24 + words.length * 4 + str.length);
  const d = new DataView(out.buffer);
  d.setUint16(0, 0xeb9f, true);
  d.setUint8(2, 1);
  d.setUint32(4, 24, true);
  d.setUint32(8, 0, true);
  d.setUint32(12, words.length * 4, true);
  d.setUint32(16, words.length * 4, true);
  d.setUint32(20, str.length, true);
  words.forEach((w, i) => d.setUint32(24 + i * 4, w >>> 0, true));
  out.set(str, 24 + words.length * 4);
  return parseBtf(out, 'built.o');
}

const info = (kind: number, vlen: number, kflag = false): number => ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen;
function intType(name: number, size: number, bits: number, offset: number, signed: boolean): number[] {
  return [name, info(1, 0), size, ((signed ? 1 : 0) << 24) | (offset << 16) | bits];
}
function refType(kind: number, name: number, type: number): number[] {
  return [name, info(kind, 0), type];
}
/** members: [name, type, offset] */
function structType(name: number, size: number, members: [number, number, number][], kflag = false): number[] {
  return [name, info(4, members.length, kflag), size, ...members.flat()];
}
