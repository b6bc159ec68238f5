import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { loadObject } from '../elf/loader.js';
import { type Btf, BtfError, parseBtf } from './btf.js';
import { formatValue, typeName } from './format.js';

const FIXTURES = new URL('../elf/fixtures/', import.meta.url);

function objectBtf(name: string): { btf: Btf; obj: ReturnType<typeof loadObject> } {
  const obj = loadObject(new Uint8Array(readFileSync(new URL(`${name}.o`, FIXTURES))), `${name}.o`, { type: 'raw' });
  return { btf: obj.btf!, obj };
}

/** The type of member `member` of struct `struct`. */
function memberType(btf: Btf, struct: string, member: string): number {
  const t = btf.find(struct, 'struct');
  if (t?.kind !== 'struct') throw new Error(`no struct ${struct}`);
  return t.members.find((m) => m.name === member)!.type;
}

describe('typeName spells types as C does', () => {
  const { btf } = objectBtf('kinds');
  const flow = objectBtf('xdp_flow').btf;
  test.each([
    ['ratio', 'double'],
    ['w', 'union word'],
    ['wide', 'enum wide'],
    ['hidden', 'struct opaque *'],
    ['cb', 'int (*)(int, const char *)'],
    ['name', 'char * restrict'],
    ['flag', 'volatile __u8'],
    ['uptr', 'int *'],
    ['bytes', '__u8[3]'],
    ['ok', '_Bool'],
    ['color', 'enum color'],
  ])('struct zoo member %s is %s', (member, spelling) => {
    expect(typeName(btf, memberType(btf, 'zoo', member))).toBe(spelling);
  });

  test('typedefs, structs, arrays, qualifiers, functions and variables', () => {
    expect(typeName(flow, flow.find('flow_key')!.id)).toBe('struct flow_key');
    expect(typeName(flow, flow.find('__u32')!.id)).toBe('__u32');
    expect(typeName(flow, memberType(flow, 'flow_stats', 'tag'))).toBe('char[8]');
    const maxLen = flow.find('max_len', 'var')!;
    expect(typeName(flow, maxLen.kind === 'var' ? maxLen.type : 0)).toBe('const volatile __u32');
    expect(typeName(flow, maxLen.id)).toBe('const volatile __u32 max_len');
    expect(typeName(flow, flow.find('xdp_count', 'func')!.id)).toBe('int xdp_count(struct xdp_md *)');
    expect(typeName(btf, btf.find('.data', 'datasec')!.id)).toBe('SEC(".data")');
    expect(typeName(btf, 0)).toBe('void');
  });

  test('declarators clang rarely emits: pointer to array, array of pointers, variadic, anonymous', () => {
    const b = buildBtf(
      [
        ...intType(1, 4, 32, true), // [1] int
        ...ref(3, 0, 0, [1, 1, 4]), // [2] int[4]
        ...ref(2, 0, 2), // [3] int (*)[4]
        ...ref(2, 0, 5), // [4] char *   (-> [5])
        ...intType(5, 1, 8, true), // [5] char
        ...ref(3, 0, 0, [4, 1, 4]), // [6] char *[4]
        ...ref(10, 0, 5), // [7] const char
        ...ref(2, 0, 7), // [8] const char *
        ...[0, (13 << 24) | 2, 1, 0, 8, 0, 0], // [9] int (const char *, ...)
        ...ref(2, 0, 9), // [10] pointer to it
        ...[0, (4 << 24) | 0, 0], // [11] struct {...}
        ...ref(2, 0, 4), // [12] char **
        ...[0, (13 << 24) | 0, 0], // [13] void (void)
        ...ref(2, 0, 13), // [14] void (*)(void)
        ...ref(10, 0, 4), // [15] char * const
      ],
      '\0int\0char\0',
    );
    expect(typeName(b, 3)).toBe('int (*)[4]');
    expect(typeName(b, 6)).toBe('char *[4]');
    expect(typeName(b, 10)).toBe('int (*)(const char *, ...)');
    expect(typeName(b, 11)).toBe('struct {...}');
    expect(typeName(b, 12)).toBe('char **');
    expect(typeName(b, 14)).toBe('void (*)(void)');
    expect(typeName(b, 15)).toBe('char * const');
  });
});

describe('formatValue renders C initializers', () => {
  const { btf, obj } = objectBtf('xdp_flow');
  const key = btf.find('flow_key')!.id;
  const stats = btf.find('flow_stats')!.id;

  test('a flow key: addresses in hex, other integers in decimal', () => {
    // saddr 10.0.0.1 as the u32 0x0a000001, dport 80, proto 6, then padding.
    const bytes = Uint8Array.of(0x01, 0x00, 0x00, 0x0a, 80, 0, 6, 0);
    expect(formatValue(btf, key, bytes)).toBe('{ .saddr = 0x0a000001, .dport = 80, .proto = 6 }');
  });

  test('enums by name, char arrays as strings, bitfields extracted and sign-extended', () => {
    const bytes = new Uint8Array(32);
    const d = new DataView(bytes.buffer);
    d.setBigUint64(0, 5n, true);
    d.setBigUint64(8, 1500n, true);
    d.setUint32(16, 3, true); // XDP_TX
    bytes.set(new TextEncoder().encode('new'), 20);
    // seen:1 = 1 at bit 0, kind:3 = 5 at bit 1, delta:12 = -3 at bit 4 of the u32 at byte 28.
    d.setUint32(28, 1 | (5 << 1) | ((-3 & 0xfff) << 4), true);
    expect(formatValue(btf, stats, bytes)).toBe(
      '{ .packets = 5, .bytes = 1500, .last = XDP_TX, .tag = "new", .seen = 1, .kind = 5, .delta = -3 }',
    );
    d.setUint32(16, 9, true);
    bytes[27] = 0x07; // bytes after the NUL: the array is shown element by element
    expect(formatValue(btf, stats, bytes)).toContain(".last = 9, .tag = { 'n', 'e', 'w', 0, 0, 0, 0, 7 }");
  });

  test('global data maps through their DATASEC', () => {
    const rodata = obj.maps.find((m) => m.name === '.rodata')!;
    expect(formatValue(btf, rodata.btfValueTypeId!, rodata.initialValue!)).toBe('{ .max_len = 1500 }');
    const kinds = objectBtf('kinds');
    const data = kinds.obj.maps.find((m) => m.name === '.data')!;
    // The initializer in kinds.c; w.u = 0x3f800000 is 1.0f, whose halves are 0 and 0x3f80.
    expect(formatValue(kinds.btf, data.btfValueTypeId!, data.initialValue!)).toBe(
      '{ .zoo_var = { .ratio = 0.5, .w = { .u = 1065353216, .halves = { 0, 16256 }, .f = 1.0 }, .wide = WIDE_BIG, ' +
        '.hidden = 0x0, .cb = 0x0, .name = 0x0, .flag = 9, .uptr = 0x0, .tagged = -7, .bytes = { 1, 2, 3 }, ' +
        '.ok = true, .color = GREEN }, .hits = 3 }',
    );
  });

  test('chars, anonymous members, long arrays', () => {
    const b = buildBtf(
      [
        ...intType(1, 1, 8, true), // [1] char
        ...intType(6, 4, 32, false), // [2] unsigned int
        ...[0, (4 << 24) | 1, 4, 19, 2, 0], // [3] struct { unsigned int inner; }
        ...[25, (4 << 24) | 2, 8, 31, 1, 0, 0, 3, 32], // [4] struct outer { char c; struct {...}; }
        ...ref(3, 0, 0, [2, 2, 100]), // [5] unsigned int[100]
      ],
      '\0char\0unsigned int\0inner\0outer\0c\0',
    );
    expect(formatValue(b, 4, Uint8Array.of(0x41, 0, 0, 0, 7, 0, 0, 0))).toBe("{ .c = 'A', .inner = 7 }");
    expect(formatValue(b, 4, Uint8Array.of(0x05, 0, 0, 0, 7, 0, 0, 0))).toBe('{ .c = 5, .inner = 7 }');
    const arr = new Uint8Array(400);
    arr[0] = 1;
    expect(formatValue(b, 5, arr, { maxElements: 3 })).toBe('{ 1, 0, 0, ... }');
  });

  test('a value shorter than its type is refused', () => {
    expect(() => formatValue(btf, key, new Uint8Array(4))).toThrow(BtfError);
    expect(() => formatValue(btf, key, new Uint8Array(4))).toThrow(/4 bytes is too short for struct flow_key \(8 bytes\)/);
  });

  test('a member placed outside its struct by malformed BTF is reported, not read', () => {
    // struct s (size 4) { unsigned int x at bit 64 }.
    const b = buildBtf([...intType(1, 4, 32, false), ...[6, (4 << 24) | 1, 4, 8, 1, 64]], '\0uint\0s\0x\0');
    expect(() => formatValue(b, 2, new Uint8Array(4))).toThrow(/outside the 4-byte value/);
  });
});

// A tiny BTF writer for cases clang does not emit: types as u32 words, strings as text.
function buildBtf(words: number[], strings: string): Btf {
  const str = new TextEncoder().encode(strings);
  const out = new Uint8Array(24 + words.length * 4 + str.length);
  const d = new DataView(out.buffer);
  d.setUint16(0, 0xeb9f, true);
  d.setUint8(2, 1);
  d.setUint32(4, 24, true);
  d.setUint32(12, words.length * 4, true);
  d.setUint32(16, words.length * 4, true);
  d.setUint32(20, str.length, true);
  words.forEach((w, i) => d.setUint32(24 + i * 4, w >>> 0, true));
  out.set(str, 24 + words.length * 4);
  return parseBtf(out, 'built.o');
}

function intType(name: number, size: number, bits: number, signed: boolean): number[] {
  return [name, 1 << 24, size, ((signed ? 1 : 0) << 24) | bits];
}
/** A type with one `type` word (kind 2, 8-11) or, for arrays (kind 3), its btf_array words. */
function ref(kind: number, name: number, type: number, array?: number[]): number[] {
  return array ? [name, kind << 24, 0, ...array] : [name, kind << 24, type];
}
