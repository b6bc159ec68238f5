import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseElf } from '../elf/elf.js';
import { type Btf, BtfError, parseBtf } from './btf.js';
import { parseBtfExt } from './ext.js';

const FIXTURES = new URL('../elf/fixtures/', import.meta.url);
const OBJECTS = ['xdp_flow', 'tc_subprog', 'legacy_maps', 'loop_cb', 'prog_array', 'core', 'kinds'];

function load(name: string): { btf: Btf; ext: Uint8Array } {
  const elf = parseElf(new Uint8Array(readFileSync(new URL(`${name}.o`, FIXTURES))), `${name}.o`);
  const sec = (n: string): Uint8Array => elf.sections.find((s) => s.name === n)!.data.slice();
  return { btf: parseBtf(sec('.BTF'), `${name}.o`), ext: sec('.BTF.ext') };
}

/** Function starts and CO-RE records as `llvm-objdump-19 -dr` prints them. */
function objdump(name: string): {
  funcs: { section: string; name: string; start: number }[];
  core: { section: string; insnOff: number; kind: string; typeId: number; detail: string }[];
} {
  const funcs: { section: string; name: string; start: number }[] = [];
  const core: { section: string; insnOff: number; kind: string; typeId: number; detail: string }[] = [];
  let section = '';
  for (const line of readFileSync(new URL(`${name}.objdump.txt`, FIXTURES), 'utf8').split('\n')) {
    let m = /^Disassembly of section (.*):$/.exec(line);
    if (m) section = m[1]!;
    m = /^([0-9a-f]{16}) <(.*)>:$/.exec(line);
    if (m) funcs.push({ section, name: m[2]!, start: parseInt(m[1]!, 16) / 8 });
    m = /^\t\t([0-9a-f]+):\s+CO-RE <(\w+)> \[(\d+)\] (.*)$/.exec(line);
    if (m) core.push({ section, insnOff: parseInt(m[1]!, 16), kind: m[2]!, typeId: Number(m[3]), detail: m[4]! });
  }
  return { funcs, core };
}

/** libbpf's core_relo_kind_str, which llvm-objdump uses too. */
const KIND_NAMES = [
  'byte_off', 'byte_sz', 'field_exists', 'signed', 'lshift_u64', 'rshift_u64', 'local_type_id',
  'target_type_id', 'type_exists', 'type_size', 'enumval_exists', 'enumval_value', 'type_matches',
];

describe('parseBtfExt on clang-19 objects', () => {
  test.each(OBJECTS)('%s.o: line info carries the C source line it points to', (name) => {
    const { btf, ext } = load(name);
    const source = readFileSync(new URL(`${name}.c`, FIXTURES), 'utf8').split('\n');
    const info = parseBtfExt(ext, btf);
    const records = info.lineInfo.flatMap((s) => s.records);
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r.file.endsWith(`/${name}.c`)).toBe(true);
      expect(r.text).toBe(source[r.line - 1]);
      expect(r.col).toBeLessThanOrEqual(r.text.length + 1);
    }
  });

  test.each(OBJECTS)('%s.o: func info names the functions objdump shows, at their starts', (name) => {
    const { btf, ext } = load(name);
    const got = parseBtfExt(ext, btf).funcInfo.flatMap((s) =>
      s.records.map((r) => ({ section: s.section, name: btf.type(r.typeId).name, start: r.insnOff / 8 })),
    );
    const want = objdump(name).funcs;
    const key = (f: { section: string; start: number }): string => `${f.section}:${f.start}`;
    expect(got.sort((a, b) => key(a).localeCompare(key(b)))).toEqual(want.sort((a, b) => key(a).localeCompare(key(b))));
  });

  test('core.o: CO-RE records equal those objdump decodes', () => {
    const { btf, ext } = load('core');
    const relos = parseBtfExt(ext, btf).coreRelos;
    const got = relos.flatMap((s) => s.records.map((r) => ({ section: s.section, ...r })));
    const want = objdump('core').core;
    expect(got).toHaveLength(want.length);
    // core.c uses every one of the 13 relocation kinds.
    expect(new Set(got.map((r) => r.kind)).size).toBe(13);
    got.forEach((r, i) => {
      const w = want[i]!;
      expect([r.section, r.insnOff, KIND_NAMES[r.kind], r.typeId]).toEqual([w.section, w.insnOff, w.kind, w.typeId]);
      const access = /\(([\d:]+)\)$/.exec(w.detail);
      if (access) {
        expect(r.access).toBe(access[1]);
      } else if (w.kind.startsWith('enumval')) {
        // `enum task_state::TASK_STOPPED = 4`: the access string indexes the enumerator.
        const t = btf.type(r.typeId);
        const enumerator = /::(\w+) =/.exec(w.detail)![1];
        expect(t.kind === 'enum' || t.kind === 'enum64' ? t.values[Number(r.access)]!.name : '').toBe(enumerator);
      } else {
        expect(r.access).toBe('0');
      }
    });
  });
});

describe('parseBtfExt rejects malformed input', () => {
  const { btf, ext } = load('xdp_flow');
  const mutate = (f: (d: DataView) => void): Uint8Array => {
    const b = ext.slice();
    f(new DataView(b.buffer));
    return b;
  };
  const d = new DataView(ext.buffer, ext.byteOffset, ext.byteLength);
  const hdrLen = d.getUint32(4, true);
  const funcStart = hdrLen + d.getUint32(8, true);
  const lineStart = hdrLen + d.getUint32(16, true);

  test('truncated header and bad magic', () => {
    expect(() => parseBtfExt(ext.subarray(0, 8), btf)).toThrow('xdp_flow.o: truncated header (8 bytes, need 24) (section .BTF.ext, offset 0x0)');
    expect(() => parseBtfExt(mutate((v) => v.setUint16(0, 0x1234, true)), btf)).toThrow(/bad magic 0x1234/);
    expect(() => parseBtfExt(mutate((v) => v.setUint16(0, 0xeb9f, false)), btf)).toThrow(/big-endian/);
  });
  test('a segment beyond the section', () => {
    expect(() => parseBtfExt(mutate((v) => v.setUint32(12, 0x10000, true)), btf)).toThrow(/func_info .* out of range/);
  });
  test('a record size below the minimum', () => {
    expect(() => parseBtfExt(mutate((v) => v.setUint32(lineStart, 8, true)), btf)).toThrow(/line_info has bad record size 8/);
  });
  test('a section with no records', () => {
    expect(() => parseBtfExt(mutate((v) => v.setUint32(funcStart + 8, 0, true)), btf)).toThrow(/func_info section 'xdp' has no records/);
  });
  test('more records than the segment holds', () => {
    expect(() => parseBtfExt(mutate((v) => v.setUint32(funcStart + 8, 1000, true)), btf)).toThrow(/has 1000 records, more than fit/);
  });
  test('a string offset out of the BTF string section', () => {
    const e = (() => {
      try {
        parseBtfExt(mutate((v) => v.setUint32(lineStart + 4 + 8 + 4, 0xffffff, true)), btf);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(BtfError);
    expect((e as BtfError).message).toBe(
      `xdp_flow.o: string offset 0xffffff out of range (section .BTF.ext, offset 0x${(lineStart + 16).toString(16)})`,
    );
  });
});
