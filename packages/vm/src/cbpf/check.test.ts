import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkClassic } from './check.js';
import { CbpfError, type CbpfInsn } from './insn.js';
import { parseCbpfDump } from './parse.js';

const prog = (...lines: string[]): CbpfInsn[] => parseCbpfDump(`${lines.length}\n${lines.join('\n')}`);
const RET0 = '6 0 0 0';

/** Programs bpf_check_classic() rejects, with the message naming the instruction. */
const INVALID: [name: string, insns: CbpfInsn[], message: string][] = [
  ['empty', [], 'f: a filter has 1 to 4096 instructions, this one has 0'],
  ['too long', Array.from({ length: 4097 }, () => ({ code: 6, jt: 0, jf: 0, k: 0 })), 'f: a filter has 1 to 4096 instructions, this one has 4097'],
  ['unknown opcode', prog('255 0 0 0', RET0), 'f: instruction 0 (unimp 0xff): opcode 0xff is not allowed in a socket filter'],
  ['ret X', prog('14 0 0 0'), 'f: instruction 0 (unimp 0xe): opcode 0x0e is not allowed in a socket filter'],
  ['seccomp-only ld', prog('32 0 0 4', RET0).map((i, n) => (n === 0 ? { ...i, code: 0x21 } : i)), 'f: instruction 0 (unimp 0x21): opcode 0x21 is not allowed in a socket filter'],
  ['div by zero', prog('52 0 0 0', RET0), 'f: instruction 0 (div #0): division by constant zero'],
  ['mod by zero', prog('148 0 0 0', RET0), 'f: instruction 0 (mod #0): division by constant zero'],
  ['shift too far', prog('100 0 0 32', RET0), 'f: instruction 0 (lsh #32): shift by 32 (must be below 32)'],
  ['M[16]', prog('2 0 0 16', RET0), 'f: instruction 0 (st M[16]): scratch memory index 16 (M[] has 16 words)'],
  ['ja past end', prog('5 0 0 1', RET0), 'f: instruction 0 (ja 2): jump target 2 is past the last instruction 1'],
  ['jt past end', prog('21 1 0 0', RET0), 'f: instruction 0 (jeq #0x0 jt 2 jf 1): jt target 2 is past the last instruction 1'],
  ['jf past end', prog('29 0 5 0', RET0), 'f: instruction 0 (jeq x jt 1 jf 6): jf target 6 is past the last instruction 1'],
  ['unknown ancillary', prog(`32 0 0 ${0xfffff000 + 64}`, RET0), 'f: instruction 0 (ld [-4032]): unknown ancillary load SKF_AD_OFF + 64'],
  ['no ret at the end', prog(RET0, '0 0 0 1'), 'f: instruction 1 (ld #0x1): the last instruction must be a ret'],
  ['read before write', prog('96 0 0 3', RET0), 'f: instruction 0 (ld M[3]): reads M[3], which some path reaches without writing it'],
  [
    'written on one path only',
    // jeq #0 jt 1 jf 0; st M[0] (only on the false path); ld M[0]; ret a
    prog('21 1 0 0', '2 0 0 0', '96 0 0 0', '22 0 0 0'),
    'f: instruction 2 (ld M[0]): reads M[0], which some path reaches without writing it',
  ],
];

/** Programs it accepts. */
const VALID: [name: string, insns: CbpfInsn[]][] = [
  ['ret only', prog(RET0)],
  ['written on both paths', prog('21 2 0 0', '2 0 0 0', '5 0 0 1', '3 0 0 0', '96 0 0 0', '22 0 0 0')],
  ['every ancillary', prog(...Array.from({ length: 16 }, (_, i) => `32 0 0 ${0xfffff000 + 4 * i}`), RET0)],
  ['net and link offsets', prog(`48 0 0 ${0x100000000 - 0x100000}`, `48 0 0 ${0x100000000 - 0x200000 + 6}`, RET0)],
  ['shift by 31, M[15]', prog('100 0 0 31', '2 0 0 15', '97 0 0 15', '22 0 0 0')],
  ['longest', Array.from({ length: 4096 }, () => ({ code: 6, jt: 0, jf: 0, k: 0 }))],
];

describe('checkClassic', () => {
  for (const [name, insns, message] of INVALID) {
    it(`rejects: ${name}`, () => {
      let error: unknown;
      try {
        checkClassic(insns, 'f');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CbpfError);
      expect((error as CbpfError).message).toBe(message);
      const pc = /instruction (\d+)/.exec(message)?.[1];
      expect((error as CbpfError).insn).toBe(pc === undefined ? undefined : Number(pc));
    });
  }

  for (const [name, insns] of VALID) {
    it(`accepts: ${name}`, () => expect(() => checkClassic(insns, 'f')).not.toThrow());
  }
});

// The kernel as the oracle: attach each program to a UDP socket with SO_ATTACH_FILTER, which
// runs bpf_check_classic() and answers 0 or EINVAL.
const ATTACH = String.raw`
import ctypes, json, socket, struct, sys
out = []
for prog in json.load(sys.stdin):
    raw = b"".join(struct.pack("<HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
    fprog = struct.pack("<HxxxxxxQ", len(prog), ctypes.addressof(buf))  # struct sock_fprog
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
        out.append(0)
    except OSError as e:
        out.append(e.errno)
    s.close()
print(json.dumps(out))
`;

const hasPython = process.platform === 'linux' && process.arch === 'x64' && spawnSync('python3', ['-c', 'import ctypes'], { stdio: 'ignore' }).status === 0;
if (!hasPython) console.warn('skipping the comparison with the kernel: needs Linux on x86-64 and python3');

describe.skipIf(!hasPython)('checkClassic agrees with the kernel', () => {
  it('accepts what SO_ATTACH_FILTER accepts and rejects what it rejects (EINVAL)', () => {
    const cases = [...INVALID.map(([name, insns]) => ({ name, insns, valid: false })), ...VALID.map(([name, insns]) => ({ name, insns, valid: true }))];
    const input = JSON.stringify(cases.map((c) => c.insns.map((i) => [i.code, i.jt, i.jf, i.k])));
    const errnos = JSON.parse(execFileSync('python3', ['-c', ATTACH], { input, encoding: 'utf8', maxBuffer: 16 << 20 })) as number[];
    cases.forEach((c, i) => expect(errnos[i], c.name).toBe(c.valid ? 0 : 22));
  });
});
