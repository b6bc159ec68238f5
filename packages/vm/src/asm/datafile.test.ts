import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encode } from '../isa.js';
import { AsmError, assemble } from './assemble.js';
import { DataFileError, parseDataFile } from './datafile.js';

const SHARED = fileURLToPath(new URL('../../../../../shared/', import.meta.url));
const UBPF = join(SHARED, 'bpf-tests/ubpf');
const BENCH = join(SHARED, 'bench');
const haveShared = existsSync(UBPF);
if (!haveShared) console.log(`skipping the uBPF .data file tests: ${UBPF} is missing`);

function dataFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? dataFiles(join(dir, e.name)) : e.name.endsWith('.data') ? [join(dir, e.name)] : []))
    .sort();
}

const load = (path: string) =>
  parseDataFile(readFileSync(path, 'utf8'), {
    file: relative(SHARED, path),
    readFile: (rel) => readFileSync(join(dirname(path), rel), 'utf8'),
  });

describe.skipIf(!haveShared)('parseDataFile on the shared uBPF and bench files', () => {
  const files = [...dataFiles(UBPF), ...dataFiles(BENCH)];

  it('finds the files', () => {
    expect(files.length).toBeGreaterThan(100);
    for (const dir of ['errors', 'tcp-port-80', 'tcp-sack', 'helpers', 'extensions', 'elf']) {
      expect(files.some((f) => f.includes(`/ubpf/${dir}/`))).toBe(true);
    }
  });

  it.each(files.map((f) => [relative(SHARED, f), f]))('%s parses, and its program assembles', (_, path) => {
    const t = load(path);
    if (t.sections.asm !== undefined || t.sections.raw !== undefined) expect(t.code!.length).toBeGreaterThan(0);
    if (t.asm !== undefined) assemble(t.asm);
    // Each file checks something: a run's result or error, an ELF load (pyelf), or asm against raw bytes.
    const checks = t.result !== undefined || t.error !== undefined || t.errorPattern !== undefined;
    expect(checks || 'pyelf' in t.sections || (t.asm !== undefined && 'raw' in t.sections)).toBe(true);
  });

  it('assembles each asm section to the bytes of the raw section beside it', () => {
    const both = files.map(load).filter((t) => t.asm !== undefined && t.sections.raw !== undefined);
    expect(both.map((t) => t.file.replace(/.*\//, '')).sort()).toEqual(['alu.data', 'alu64.data', 'jmp.data', 'ldx.data', 'st.data', 'stx.data']);
    for (const t of both) expect([...encode(assemble(t.asm!))], t.file).toEqual([...encode(t.code!)]);
  });

  it('reads raw instructions as little-endian u64s: imm in the high half, opcode in the low byte', () => {
    // err-endian-size: 0x00000030000001dc = imm 0x30, off 0, regs 0x01, opcode 0xdc (be with a bad width).
    const t = load(join(UBPF, 'errors/err-endian-size.data'));
    expect([t.code!.op[0], t.code!.dst[0], t.code!.src[0], t.code!.off[0], t.code!.imm[0]]).toEqual([0xdc, 1, 0, 0, 0x30]);
    expect(t.error).toBe('Failed to load code: invalid endian immediate at PC 0');
    // ldx.data: 0x0000000080002161 = ldxw %r1, [%r2-32768]
    const ldx = load(join(UBPF, 'ldx.data'));
    expect([ldx.code!.op[7], ldx.code!.dst[7], ldx.code!.src[7], ldx.code!.off[7]]).toEqual([0x61, 1, 2, -32768]);
  });

  it('assembles invalid registers so that the validator can reject them', () => {
    expect(load(join(UBPF, 'errors/err-invalid-reg-dst.data')).code!.dst[0]).toBe(11);
    expect(load(join(UBPF, 'errors/err-invalid-reg-src.data')).code!.src[0]).toBe(11);
  });

  it('reads hexdump memory files and @ references', () => {
    const t = load(join(UBPF, 'tcp-sack/match.data'));
    expect(t.mem!.length).toBe(4 * 16 + 14);
    expect([...t.mem!.subarray(0, 4)]).toEqual([0x00, 0x26, 0x62, 0x2f]);
    expect([...t.mem!.subarray(-2)]).toEqual([0xcf, 0xd0]);
    expect(t.result).toBe(1n);
    expect(t.code!.length).toBe(assemble(readFileSync(join(UBPF, 'tcp-sack/tcp-sack.asm'), 'utf8')).length);
  });

  it('reads inline memory, descriptions, results and error patterns', () => {
    const proto = load(join(UBPF, 'tcp-port-80/nomatch-proto.data'));
    expect(proto.description).toBe('Wrong IP protocol');
    expect(proto.mem!.length).toBe(6 * 16 + 4);
    expect(proto.mem![23]).toBe(0x11);
    expect(proto.result).toBe(0n);

    const fnv = load(join(BENCH, 'fnv-hash.data'));
    expect(fnv.description).toMatch(/^FNV-1a over the 64 input bytes/);
    expect(fnv.result).toBe(0xeb0d344106c15b25n);

    const oob = load(join(UBPF, 'errors/err-stack-oob.data'));
    expect(oob.errorPattern).toBe('uBPF error: out of bounds memory store at PC 0, addr .*, size 1');
    expect(oob.result).toBe(0xffffffffffffffffn);
    expect(oob.sections['no jit']).toBe('stack oob check not implemented');

    const c = load(join(UBPF, 'mul-loop.data'));
    expect(c.sections.c).toMatch(/^#include <stdint.h>/);
  });
});

describe('parseDataFile', () => {
  it('reports assembly errors with the .data file line', () => {
    const text = '# a test\n-- asm\nmov %r0, 1\nfrob %r1\nexit\n-- result\n0x1\n';
    expect(() => parseDataFile(text, { file: 'x.data' })).toThrow(new AsmError('x.data', 4, "unknown mnemonic 'frob'"));
  });

  it('reports errors in included asm against the included file', () => {
    const text = '-- asm @ prog.asm\n-- result\n1\n';
    expect(() => parseDataFile(text, { file: 'dir/x.data', readFile: () => 'exit\nja nowhere\n' })).toThrow(
      new AsmError('dir/prog.asm', 2, "undefined label 'nowhere'"),
    );
    expect(() => parseDataFile(text, { file: 'x.data' })).toThrow(DataFileError);
  });

  it('prefers raw over asm and keeps unknown sections', () => {
    const t = parseDataFile('-- asm\nmov %r0, 1\nexit\n-- raw\n0x95 # exit\n-- frobnicate\nsome text\n\n', { file: 'x.data' });
    expect(t.code!.length).toBe(1);
    expect(t.code!.op[0]).toBe(0x95);
    expect(t.sections.frobnicate).toBe('some text');
    expect(t.sections.raw).toBe('0x95 # exit');
  });

  it('strips comments from mem and result, and reads decimal results', () => {
    const t = parseDataFile('-- mem\n00 11 # two bytes\n0x0002: 22 33\n-- result\n42 # answer\n', { file: 'x.data' });
    expect([...t.mem!]).toEqual([0x00, 0x11, 0x22, 0x33]);
    expect(t.result).toBe(42n);
  });

  it('rejects duplicate sections, bad raw lines, bad results and stray text', () => {
    expect(() => parseDataFile('-- asm\nexit\n-- asm\nexit\n', { file: 'x.data' })).toThrow("x.data:3: section 'asm' already defined at line 1");
    expect(() => parseDataFile('-- raw\n0x95\nexit\n', { file: 'x.data' })).toThrow("x.data:3: raw instruction 'exit' is not an unsigned 64-bit number");
    expect(() => parseDataFile('-- result\nmaybe\n', { file: 'x.data' })).toThrow("x.data:2: result 'maybe' is not a number");
    expect(() => parseDataFile('exit\n-- asm\nexit\n', { file: 'x.data' })).toThrow(/^x\.data:1: text before the first/);
  });
});
