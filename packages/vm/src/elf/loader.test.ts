import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { encode } from '../isa.js';
import { BPF_MAP_TYPE, type Program } from '../program.js';
import { ElfError } from './elf.js';
import { type BpfObject, loadObject } from './loader.js';
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from '../maps/uapi.js';
import { progTypeForSection } from './sections.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);

function fixture(name: string): Uint8Array {
  // A copy: Node's Buffer.slice would alias the file bytes.
  return new Uint8Array(readFileSync(new URL(`${name}.o`, FIXTURES)));
}

function load(name: string, opts?: Parameters<typeof loadObject>[2]): BpfObject {
  return loadObject(fixture(name), `${name}.o`, opts);
}

interface DumpInsn {
  /** Slot within the section. */
  pc: number;
  bytes: number[];
  relocs: { type: string; symbol: string }[];
  core: string[];
}
interface DumpFunc {
  section: string;
  name: string;
  insns: DumpInsn[];
}

/** `llvm-objdump-19 -dr` output: functions with their instruction bytes, relocations and CO-RE records. */
function objdump(name: string): Map<string, DumpFunc> {
  const funcs = new Map<string, DumpFunc>();
  let section = '';
  let fn: DumpFunc | undefined;
  for (const line of readFileSync(new URL(`${name}.objdump.txt`, FIXTURES), 'utf8').split('\n')) {
    let m = /^Disassembly of section (.*):$/.exec(line);
    if (m) section = m[1]!;
    if ((m = /^[0-9a-f]{16} <(.*)>:$/.exec(line))) funcs.set(m[1]!, (fn = { section, name: m[1]!, insns: [] }));
    if ((m = /^ +(\d+):\t((?:[0-9a-f]{2} ?)+)\t/.exec(line))) {
      fn!.insns.push({ pc: Number(m[1]), bytes: m[2]!.trim().split(' ').map((h) => parseInt(h, 16)), relocs: [], core: [] });
    }
    if ((m = /^\t\t[0-9a-f]+:\s+(R_BPF_\w+)\t(.*)$/.exec(line))) fn!.insns.at(-1)!.relocs.push({ type: m[1]!, symbol: m[2]! });
    if ((m = /^\t\t[0-9a-f]+:\s+CO-RE <(\w+)>/.exec(line))) fn!.insns.at(-1)!.core.push(m[1]!);
  }
  return funcs;
}

/** The 8-byte slot `pc` of a program, as bytes. */
function slot(p: Program, pc: number): number[] {
  return [...encode(p.code).subarray(pc * 8, pc * 8 + 8)];
}

/** Pseudo calls, and lddw with a relocation, are the instructions a loader rewrites. */
function rewritten(insn: DumpInsn): boolean {
  const pseudoCall = insn.bytes[0] === 0x85 && insn.bytes[1]! >> 4 === 1;
  return pseudoCall || insn.relocs.length > 0;
}

/**
 * Each function laid out in `p` holds the bytes objdump shows for it, except where a loader
 * rewrites (checked separately) and the CO-RE slots listed in `coreChanged`.
 */
function expectSameCode(p: Program, dump: Map<string, DumpFunc>, coreChanged: Set<number> = new Set()): void {
  for (const f of p.funcs) {
    const d = dump.get(f.name);
    expect(d, `objdump has ${f.name}`).toBeDefined();
    const first = d!.insns[0]!.pc;
    const last = d!.insns.at(-1)!;
    expect(f.end - f.start).toBe(last.pc + last.bytes.length / 8 - first);
    for (const insn of d!.insns) {
      const pc = f.start + insn.pc - first;
      if (rewritten(insn) || coreChanged.has(pc)) continue;
      expect(slot(p, pc), `${f.name} pc ${pc}`).toEqual(insn.bytes.slice(0, 8));
      if (insn.bytes.length === 16) expect(slot(p, pc + 1)).toEqual(insn.bytes.slice(8));
    }
  }
}

/** Where a call or callback reference at `pc` lands: pc + imm + 1. */
function target(p: Program, pc: number): number {
  return pc + p.code.imm[pc]! + 1;
}

describe('xdp_flow.o: BTF hash map and global data', () => {
  const obj = load('xdp_flow');
  const p = obj.programs[0]!;

  test('one xdp program, with the license', () => {
    expect(obj.programs.map((x) => [x.name, x.section, x.type])).toEqual([['xdp_count', 'xdp', 'xdp']]);
    expect(obj.license).toBe('GPL');
    expect(p.license).toBe('GPL');
    expect(p.maps).toBe(obj.maps);
  });

  test('maps: .maps first, then data sections in section order', () => {
    const btf = obj.btf!;
    expect(obj.maps.map((m) => m.name)).toEqual(['flows', '.rodata', '.data', '.bss']);
    expect(obj.maps[0]).toEqual({
      name: 'flows', type: BPF_MAP_TYPE.hash, keySize: 8, valueSize: 32, maxEntries: 1024, flags: 0,
      btfKeyTypeId: btf.find('flow_key')!.id, btfValueTypeId: btf.find('flow_stats')!.id,
    });
    // const volatile __u32 max_len = 1500; __u32 sample_rate = 4; __u64 total_packets;
    expect(obj.maps[1]).toEqual({
      name: '.rodata', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 4, maxEntries: 1,
      flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE, btfValueTypeId: btf.find('.rodata', 'datasec')!.id,
      initialValue: Uint8Array.of(0xdc, 0x05, 0, 0), globalData: true,
    });
    expect(obj.maps[2]).toMatchObject({ name: '.data', valueSize: 4, flags: BPF_F_MMAPABLE, initialValue: Uint8Array.of(4, 0, 0, 0) });
    expect(obj.maps[3]).toMatchObject({ name: '.bss', valueSize: 8, flags: BPF_F_MMAPABLE, initialValue: new Uint8Array(8) });
  });

  test('code is the compiled code, with map references rewritten', () => {
    expect(p.code.length).toBe(61);
    expectSameCode(p, objdump('xdp_flow'));
    // objdump: lddw at 7 max_len (.rodata), 12 total_packets (.bss), 20 and 46 flows, 50 sample_rate (.data), 53 total_packets.
    const refs = [7, 12, 20, 46, 50, 53].map((pc) => [pc, p.code.src[pc], p.code.imm[pc], p.code.imm[pc + 1]]);
    expect(refs).toEqual([
      [7, 6, 1, 0],
      [12, 6, 3, 0],
      [20, 5, 0, 0],
      [46, 5, 0, 0],
      [50, 6, 2, 0],
      [53, 6, 3, 0],
    ]);
  });

  test('initial values are copies, not views of the caller\'s bytes', () => {
    const file = readFileSync(new URL('xdp_flow.o', FIXTURES));
    const again = loadObject(file, 'xdp_flow.o');
    file.fill(0);
    expect(again.maps[1]!.initialValue).toEqual(Uint8Array.of(0xdc, 0x05, 0, 0));
  });

  test('the DATASEC fixup gives sections their ELF sizes', () => {
    const bss = obj.btf!.find('.bss', 'datasec');
    expect(bss?.kind === 'datasec' && bss.size).toBe(8);
  });
});

describe('tc_subprog.o: .text subprograms appended per program', () => {
  const obj = load('tc_subprog');
  const [ingress, cls] = obj.programs;
  const dump = objdump('tc_subprog');

  test('programs from tc/ingress and classifier; .text functions are not programs', () => {
    expect(obj.programs.map((x) => [x.name, x.section, x.type])).toEqual([
      ['tc_ingress', 'tc/ingress', 'tc'],
      ['cls_main', 'classifier', 'tc'],
    ]);
  });

  test('tc_ingress gets its own copy of mix, after its code', () => {
    expect(ingress!.funcs).toEqual([
      { name: 'tc_ingress', start: 0, end: 11 },
      { name: 'mix', start: 11, end: 15 },
    ]);
    expect(ingress!.code.length).toBe(15);
    expectSameCode(ingress!, dump);
    expect(ingress!.code.imm[8]).toBe(2);
    expect(target(ingress!, 8)).toBe(11);
  });

  test('cls_main: scale, then what scale calls (twice, mix), in order of first reference', () => {
    // libbpf's bpf_object__reloc_code: scale is appended when cls_main calls it, then scale's
    // own calls append twice and mix before cls_main's later call to mix is resolved.
    expect(cls!.funcs).toEqual([
      { name: 'cls_main', start: 0, end: 16 },
      { name: 'scale', start: 16, end: 24 },
      { name: 'twice', start: 24, end: 27 },
      { name: 'mix', start: 27, end: 31 },
    ]);
    expectSameCode(cls!, dump);
    // cls_main: call scale at 9 (R_BPF_64_32 scale), call mix at 13 (R_BPF_64_32 .text+imm).
    // scale: calls at its slots 1 and 5 that clang already resolved within .text.
    expect([9, 13, 17, 21].map((pc) => [pc, cls!.code.src[pc], target(cls!, pc)])).toEqual([
      [9, 1, 16],
      [13, 1, 27],
      [17, 1, 24],
      [21, 1, 27],
    ]);
  });

  test('.rodata and .rodata.str1.1 become read-only global data maps', () => {
    expect(obj.maps.map((m) => [m.name, m.valueSize, m.flags])).toEqual([
      ['.rodata', 7, BPF_F_RDONLY_PROG],
      ['.rodata.str1.1', 4, BPF_F_RDONLY_PROG],
    ]);
    expect(new TextDecoder().decode(obj.maps[1]!.initialValue)).toBe('cls\0');
    expect([ingress!.code.src[2], ingress!.code.imm[2], ingress!.code.imm[3]]).toEqual([6, 0, 0]);
    expect([cls!.code.src[3], cls!.code.imm[3], cls!.code.imm[4]]).toEqual([6, 1, 0]);
  });

  test('line info moves with the appended subprograms', () => {
    const source = readFileSync(new URL('tc_subprog.c', FIXTURES), 'utf8').split('\n');
    for (const prog of obj.programs) {
      const lines = prog.lines!;
      expect(lines.map((l) => l.pc)).toEqual([...lines.map((l) => l.pc)].sort((a, b) => a - b));
      for (const l of lines) expect(l.text).toBe(source[l.line - 1]);
      // Each function's first line is its declaration, at the pc it was placed at.
      for (const f of prog.funcs) {
        const first = lines.find((l) => l.pc === f.start);
        expect(first?.text, `${prog.name}: ${f.name}`).toMatch(new RegExp(`\\b${f.name}\\(`));
      }
    }
    expect(cls!.lines!.find((l) => l.pc === 25)?.text).toBe('\treturn a * 2;');
  });
});

describe('loop_cb.o: callbacks through BPF_PSEUDO_FUNC', () => {
  const obj = load('loop_cb');
  const p = obj.programs[0]!;

  test('callbacks are appended and referenced relative to the lddw', () => {
    expect(p.funcs).toEqual([
      { name: 'xdp_loop', start: 0, end: 22 },
      { name: 'add_index', start: 22, end: 29 },
      { name: 'sum_elem', start: 29, end: 35 },
    ]);
    expectSameCode(p, objdump('loop_cb'));
    // lddw r2 at 5 (bpf_loop's add_index) and 12 (for_each's sum_elem, .text+0x38).
    expect([5, 12].map((pc) => [p.code.src[pc], target(p, pc), p.code.imm[pc + 1]])).toEqual([
      [4, 22, 0],
      [4, 29, 0],
    ]);
    expect([p.code.src[10], p.code.imm[10]]).toEqual([5, 0]);
    expect(obj.maps[0]).toMatchObject({ name: 'vals', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 8, maxEntries: 8 });
  });
});

describe('legacy_maps.o: struct bpf_map_def in SEC("maps")', () => {
  const obj = load('legacy_maps');

  test('each map symbol is one definition', () => {
    expect(obj.maps).toEqual([
      { name: 'counters', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 8, maxEntries: 4, flags: 0 },
      // BPF_F_NO_COMMON_LRU is 2.
      { name: 'seen', type: BPF_MAP_TYPE.lru_hash, keySize: 4, valueSize: 4, maxEntries: 128, flags: 2 },
    ]);
    const p = obj.programs[0]!;
    expect([p.name, p.type]).toEqual(['sock_count', 'socket']);
    expectSameCode(p, objdump('legacy_maps'));
    expect([7, 16].map((pc) => [p.code.src[pc], p.code.imm[pc]])).toEqual([
      [5, 0],
      [5, 1],
    ]);
  });
});

describe('prog_array.o: several programs per section, values initialisers', () => {
  const obj = load('prog_array');

  test('every global function of the section is a program', () => {
    expect(obj.programs.map((p) => [p.name, p.section, p.code.length])).toEqual([
      ['tail_a', 'tc', 2],
      ['tail_b', 'tc', 2],
      ['entry', 'tc', 21],
    ]);
    for (const p of obj.programs) expectSameCode(p, objdump('prog_array'));
  });

  test('maps in DATASEC order after sorting by offset, with initial slots', () => {
    expect(obj.maps.map((m) => m.name)).toEqual(['inner_b', 'inner_a', 'outer', 'jmp_table']);
    expect(obj.maps[2]).toMatchObject({
      type: BPF_MAP_TYPE.array_of_maps, keySize: 4, valueSize: 4, maxEntries: 4,
      inner: { name: 'outer.inner', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: 4, maxEntries: 2 },
      initialSlots: [
        { index: 1, name: 'inner_b' },
        { index: 3, name: 'inner_a' },
      ],
    });
    expect(obj.maps[3]).toMatchObject({
      type: BPF_MAP_TYPE.prog_array, keySize: 4, valueSize: 4, maxEntries: 3,
      initialSlots: [
        { index: 0, name: 'tail_a' },
        { index: 2, name: 'tail_b' },
      ],
    });
    const entry = obj.programs[2]!;
    // Section slots 9 (outer) and 20 (jmp_table), entry starting at slot 4.
    expect([5, 16].map((pc) => [entry.code.src[pc], entry.code.imm[pc]])).toEqual([
      [5, 2],
      [5, 3],
    ]);
  });
});

describe('core.o: CO-RE relocations against the object types', () => {
  const obj = load('core');
  const p = obj.programs[0]!;

  test('a tracepoint program whose relocated instructions hold the values libbpf computes', () => {
    expect([p.name, p.type]).toEqual(['core_prog', 'tracepoint']);
    // Field sizes of the bitfields prio (unsigned int :5) and nice (int :6): libbpf loads
    // them with the bitfield's own 4-byte type, where clang emitted 8 (bitfield byte sizes
    // are not validated).
    expect([p.code.imm[32], p.code.imm[59]]).toEqual([4, 4]);
    expectSameCode(p, objdump('core'), new Set([32, 59]));
    // Values clang also computed: info.start at 8, info.comm[3] at 19, prio's shifts 59/59,
    // nice's 53/58, sizeof(struct task) 40, TASK_STOPPED 4, BIG_HIGH 1 << 32.
    expect([p.code.imm[15], p.code.off[27], p.code.imm[47], p.code.imm[52], p.code.imm[74], p.code.imm[79]]).toEqual([
      8, 19, 59, 59, 53, 58,
    ]);
    expect([p.code.imm[101], p.code.imm[106], p.code.imm[109], p.code.imm[110]]).toEqual([40, 4, 0, 1]);
  });
});

describe('kinds.o: a section libbpf does not know', () => {
  test('needs --type, and says so', () => {
    expect(() => load('kinds')).toThrow(
      "kinds.o: cannot tell the type of program 'probe' from its section name; pass --type (xdp, tc, socket, ...) (section custom/probe)",
    );
  });

  test('loads with an explicit type; static data keeps its offset', () => {
    const obj = load('kinds', { type: 'xdp' });
    const p = obj.programs[0]!;
    expect([p.name, p.type]).toEqual(['probe', 'xdp']);
    expect(obj.maps.map((m) => [m.name, m.valueSize])).toEqual([
      ['.data', 84],
      ['.bss', 4],
    ]);
    // `hits` (static, .data+0x50) through the section symbol with the offset in imm,
    // zoo_var at .data+0, counter at .bss+0.
    expect([0, 6, 10].map((pc) => [p.code.src[pc], p.code.imm[pc], p.code.imm[pc + 1]])).toEqual([
      [6, 0, 0x50],
      [6, 0, 0],
      [6, 1, 0],
    ]);
  });

  test('a recognised section keeps its own type', () => {
    expect(load('xdp_flow', { type: 'socket' }).programs[0]!.type).toBe('xdp');
  });
});

describe('text_only.o: the single function of an object is a program even in .text', () => {
  test('loads with --type', () => {
    const obj = load('text_only', { type: 'socket' });
    expect(obj.programs.map((p) => [p.name, p.section, p.code.length])).toEqual([['answer', '.text', 2]]);
    expect(obj.license).toBeUndefined();
    expect(() => load('text_only')).toThrow(ElfError);
  });
});

describe('program types from section names (libbpf section_defs)', () => {
  test.each([
    ['xdp', 'xdp'],
    ['xdp.frags', 'xdp'],
    ['xdp/devmap', 'xdp'],
    ['xdp_redirect', 'xdp'],
    ['tc', 'tc'],
    ['tc/ingress', 'tc'],
    ['tcx/egress', 'tc'],
    ['classifier', 'tc'],
    ['action', 'tc'],
    ['socket', 'socket'],
    ['tracepoint/syscalls/sys_enter_open', 'tracepoint'],
    ['tp/sched/sched_switch', 'tracepoint'],
    ['kprobe/do_sys_open', 'kprobe'],
    ['kretprobe/do_sys_open', 'kprobe'],
    ['kprobe', 'kprobe'],
    ['perf_event', 'perf_event'],
    ['cgroup_skb/ingress', 'cgroup_skb'],
    ['cgroup/skb', 'cgroup_skb'],
    ['?xdp', 'xdp'],
    ['.text', undefined],
    ['raw_tp/sys_enter', undefined],
    ['kprobex', undefined],
    ['custom/probe', undefined],
  ])('%s -> %s', (section, type) => {
    expect(progTypeForSection(section)).toBe(type);
  });
});
