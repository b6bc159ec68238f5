import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assemble } from '../asm/assemble.js';
import { encode } from '../isa.js';
import { Bpffs, isBpffs } from './bpffs.js';
import { dumpMap, kernelAvailable, KernelError, loadObject, parseRunOutput, runProgram, updateMap, verifierReason } from './bpftool.js';
import { findTool } from './exec.js';
import { callTargets, writeBpfObject } from './object.js';

describe('parseRunOutput', () => {
  it("reads bpftool's text report, with and without repetitions", () => {
    expect(parseRunOutput('Return value: 2, duration (average): 35ns\n')).toEqual({ retval: 2, durationNs: 35 });
    expect(parseRunOutput('Return value: 4294967295, duration: 829ns')).toEqual({ retval: 4294967295, durationNs: 829 });
  });
  it('reads the JSON report', () => {
    expect(parseRunOutput('{"retval":6,"duration":477}')).toEqual({ retval: 6, durationNs: 477 });
  });
  it('names the output it cannot read', () => {
    expect(() => parseRunOutput('Error: something')).toThrow(/cannot read bpftool's test-run output: 'Error: something'/);
  });
});

describe('verifierReason', () => {
  it('takes the last line of the verifier log before the statistics', () => {
    // As bpftool printed it on Linux 6.18 for `r0 = 3; exit; r0 = 4; exit`.
    const log = [
      "libbpf: prog 'prog': BPF program load failed: Invalid argument",
      "libbpf: prog 'prog': -- BEGIN PROG LOAD LOG --",
      'unreachable insn 2',
      'processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
      '-- END PROG LOAD LOG --',
      "libbpf: prog 'prog': failed to load: -22",
      'Error: failed to load object file',
    ].join('\n');
    expect(verifierReason(log)).toBe('unreachable insn 2');
  });
  it('skips the state dumps that follow some reasons', () => {
    const log = [
      "libbpf: prog 'prog': -- BEGIN PROG LOAD LOG --",
      '0: R1=ctx() R10=fp0',
      '0: (61) r2 = *(u32 *)(r1 +12)       ; R1=ctx() R2_w=scalar()',
      'infinite loop detected at insn 3',
      'cur state: R0=0 R1=ctx() R2=scalar(smin=umin=umin32=1) R10=fp0',
      'old state: R0=0 R1=ctx() R2=scalar(smin=umin=umin32=1) R10=fp0',
      'processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1',
      '-- END PROG LOAD LOG --',
    ].join('\n');
    expect(verifierReason(log)).toBe('infinite loop detected at insn 3');
  });

  it('falls back to the error line when there is no verifier log', () => {
    expect(verifierReason("libbpf: prog 'prog': no .text section found yet sub-program call exists\nError: failed to load object file")).toBe('Error: failed to load object file');
  });
});

describe('writeBpfObject', () => {
  const code = assemble(`
    mov %r6, 5
    mov %r1, 3
    call local sub
    add %r0, %r6
    exit
  sub:
    mov %r0, %r1
    call local sub2
    exit
  sub2:
    mul %r0, 7
    exit`);

  it('finds the subprograms by their call sites', () => {
    expect(callTargets(code)).toEqual([5, 8]);
  });

  const objdump = findTool('llvm-objdump-19') ?? findTool('llvm-objdump');
  it.skipIf(!objdump)('writes an object llvm-objdump reads back: entry in its section, subprograms in .text, a call relocation', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rewind-obj-'));
    try {
      const obj = join(dir, 'calls.o');
      writeFileSync(obj, writeBpfObject(code, { section: 'xdp', name: 'entry' }));
      const dis = execFileSync(objdump!, ['-d', '-r', '-t', obj], { encoding: 'utf8' });
      expect(dis).toMatch(/file format elf64-bpf/);
      expect(dis).toMatch(/Disassembly of section xdp:\s+0000000000000000 <entry>:/);
      expect(dis).toMatch(/R_BPF_64_32\s+sub_5/);
      expect(dis).toMatch(/Disassembly of section \.text:\s+0000000000000000 <sub_5>:/);
      expect(dis).toMatch(/<sub_8>:\s+3:\s+27 00 00 00 07 00 00 00\s+r0 \*= 0x7/);
      expect(dis).toMatch(/g\s+F xdp\s+0+28 entry/);
      expect(dis).toMatch(/g\s+O license\s+0+4 _license/);
      // The program bytes, apart from the relocated call's imm, are the bytecode's.
      const bytes = readFileSync(obj);
      const enc = encode(code);
      expect(bytes.includes(Buffer.from(enc.subarray(40)))).toBe(true);
      expect(bytes.includes(Buffer.from(enc.subarray(0, 16)))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses lddw of a map, which needs a map section', () => {
    const withMap = assemble('.raw 0x0000000000001518\n.raw 0\nexit');
    expect(() => writeBpfObject(withMap)).toThrow(/lddw at pc 0 has source 1/);
  });
});

const kernel = kernelAvailable();
if (!kernel.ok) console.log(`skipping the kernel oracle tests: ${kernel.reason}`);

describe.skipIf(!kernel.ok)('the kernel through bpftool', () => {
  let fs: Bpffs;
  let scratch: string;
  beforeAll(() => {
    fs = Bpffs.open();
    scratch = mkdtempSync(join(tmpdir(), 'rewind-kernel-test-'));
  });
  afterAll(() => {
    fs?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const object = (name: string, src: string) => {
    const obj = join(scratch, `${name}.o`);
    writeFileSync(obj, writeBpfObject(assemble(src), { name }));
    return obj;
  };

  it('pins into a bpffs', () => {
    expect(isBpffs(fs.dir)).toBe(true);
  });

  it('loads and test-runs a program with bpf-to-bpf calls, and returns the packet', () => {
    const obj = object('calls', `
      mov %r6, 5
      mov %r1, 3
      call local sub
      add %r0, %r6
      exit
    sub:
      mov %r0, %r1
      mul %r0, 7
      mov %r6, 100
      exit`);
    const p = loadObject(obj, 'xdp', fs.subdir('calls'));
    expect(existsSync(p.pin)).toBe(true);
    const packet = Uint8Array.from({ length: 64 }, (_, i) => i);
    const r = runProgram(p.pin, packet, { repeat: 3 });
    expect(r.retval).toBe(26); // 3 * 7 + 5: r6 survives the call
    expect(r.dataOut).toEqual(packet);
    expect(r.durationNs).toBeGreaterThanOrEqual(0);
  });

  it.each(['tc', 'socket'] as const)('loads and test-runs a %s program', (type) => {
    const p = loadObject(object(`type_${type}`, 'mov %r0, 1\nexit'), type, fs.subdir(`type_${type}`));
    expect(runProgram(p.pin, new Uint8Array(64)).retval).toBe(1);
  });

  it("reports the verifier's reason for a rejection, with the whole log", () => {
    const obj = object('divzero', 'mov %r0, 1\ndiv %r0, 0\nexit');
    let err: unknown;
    try {
      loadObject(obj, 'xdp', fs.subdir('divzero'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).message).toBe(`the kernel rejected ${obj}: div by zero`);
    expect((err as KernelError).log).toMatch(/BEGIN PROG LOAD LOG/);
  });

  it('updates and dumps a pinned map', () => {
    const map = join(fs.subdir('maps'), 'counts');
    execFileSync(findTool('bpftool')!, ['map', 'create', map, 'type', 'array', 'key', '4', 'value', '8', 'entries', '4', 'name', 'counts']);
    updateMap(map, Uint8Array.of(2, 0, 0, 0), Uint8Array.of(0x11, 0x22, 0, 0, 0, 0, 0, 0x80));
    const dump = dumpMap(map) as { key: string[]; value: string[] }[];
    expect(dump).toHaveLength(4);
    expect(dump[2]!.value).toEqual(['0x11', '0x22', '0x00', '0x00', '0x00', '0x00', '0x00', '0x80']);
    expect(dump[1]!.value).toEqual(Array(8).fill('0x00'));
    expect(() => updateMap(map, Uint8Array.of(9, 0, 0, 0), new Uint8Array(8))).toThrow(KernelError);
  });

  it('unmounts and removes its own bpffs on close', () => {
    const own = Bpffs.open();
    const dir = own.dir;
    own.subdir('x');
    own.close();
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(dir);
  });
});
