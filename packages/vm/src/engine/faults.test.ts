// Every way a run can end in a fault or leave a warning: out-of-bounds accesses of caller memory
// and of the stack, accesses through a value that is not a pointer, the instruction budget, the
// call depth, and reads of registers and stack bytes never written. A fault reports the slot of
// the faulting instruction, the instructions executed before it, and the registers as they were
// before it.

import { describe, expect, it } from 'vitest';
import { assemble } from '../asm/assemble.js';
import { Fault } from '../errors.js';
import { Machine, type HelperFn } from './machine.js';
import { runOnMemory, RAW_ENTRY_REGS } from './raw.js';
import { LoadedProgram, programFromBytecode, type HelperTable, type RunOptions } from './vm.js';

function load(src: string, helpers?: HelperTable): LoadedProgram {
  return new LoadedProgram(programFromBytecode(assemble(src)), new Machine(), { entryRegs: RAW_ENTRY_REGS, helpers });
}

function run(src: string, mem = new Uint8Array(0), opts: RunOptions = {}, helpers?: HelperTable) {
  const p = load(src, helpers);
  const r = runOnMemory(p, mem, opts);
  /** r0..r9 after the run (at the fault, if there was one). */
  const reg = (i: number) => (BigInt(p.machine.R[2 * i + 1]! >>> 0) << 32n) | BigInt(p.machine.R[2 * i]! >>> 0);
  return { ...r, reg };
}

function faultOf(r: { fault?: Fault }): Fault {
  expect(r.fault).toBeInstanceOf(Fault);
  return r.fault!;
}

describe('out-of-bounds access of caller memory', () => {
  const mem60 = new Uint8Array(60);

  it('a read past the end names the instruction, the access, the region and its size', () => {
    const f = faultOf(run('ldxw %r0, [%r1+62]\nexit', mem60));
    expect(f.kind).toBe('read');
    expect(f.pc).toBe(0);
    expect(f.message).toBe('fault at insn 0 (r0 = *(u32 *)(r1 + 0x3e)): read of 4 bytes at mem+62, mem is 60 bytes');
  });

  it('a read that starts inside and ends outside', () => {
    const f = faultOf(run('mov %r0, 0\nldxdw %r0, [%r1+56]\nexit', mem60));
    expect(f.message).toBe('fault at insn 1 (r0 = *(u64 *)(r1 + 0x38)): read of 8 bytes at mem+56, mem is 60 bytes');
  });

  it('the last bytes are readable and writable', () => {
    const r = run('stw [%r1+56], 7\nldxw %r0, [%r1+56]\nexit', mem60);
    expect(r.fault).toBeUndefined();
    expect(r.r0).toBe(7n);
  });

  it('a write past the end', () => {
    const f = faultOf(run('mov %r0, 0\nstw [%r1+58], 1\nexit', mem60));
    expect(f.kind).toBe('write');
    expect(f.message).toBe('fault at insn 1 (*(u32 *)(r1 + 0x3a) = 0x1): write of 4 bytes at mem+58, mem is 60 bytes');
  });

  it('a read before the start, through a pointer moved back', () => {
    const f = faultOf(run('mov %r2, %r1\nadd %r2, -3\nldxb %r0, [%r2+1]\nexit', mem60));
    expect(f.message).toBe('fault at insn 2 (r0 = *(u8 *)(r2 + 0x1)): read of 1 byte at mem-2, mem is 60 bytes');
  });

  it('an access of empty memory', () => {
    const f = faultOf(run('ldxb %r0, [%r1]\nexit'));
    expect(f.message).toBe('fault at insn 0 (r0 = *(u8 *)(r1 + 0x0)): read of 1 byte at mem+0, mem is 0 bytes');
  });

  it('an atomic past the end', () => {
    const f = faultOf(run('mov %r2, 1\nlock add [%r1+60], %r2\nmov %r0, 0\nexit', mem60));
    expect(f.kind).toBe('read');
    expect(f.pc).toBe(1);
    expect(f.message).toMatch(/^fault at insn 1 \(lock \*\(u64 \*\)\(r1 \+ 0x3c\) \+= r2\): read of 8 bytes at mem\+60, mem is 60 bytes$/);
  });
});

describe('out-of-bounds access of the stack', () => {
  it('a read below the frame', () => {
    const f = faultOf(run('ldxdw %r0, [%r10-520]\nexit'));
    expect(f.kind).toBe('read');
    expect(f.message).toBe('fault at insn 0 (r0 = *(u64 *)(r10 - 0x208)): read of 8 bytes at stack-520, stack frame is stack-512 to stack+0');
  });

  it('a write at r10, above the frame', () => {
    const f = faultOf(run('stb [%r10+0], 0\nmov %r0, 0\nexit'));
    expect(f.kind).toBe('write');
    expect(f.message).toBe('fault at insn 0 (*(u8 *)(r10 + 0x0) = 0x0): write of 1 byte at stack+0, stack frame is stack-512 to stack+0');
  });

  it('a write that straddles r10 is misaligned, which the verifier refuses at load', () => {
    expect(() => run('mov %r0, 0\nstxdw [%r10-4], %r0\nexit')).toThrow('invalid program: misaligned stack access (r10 - 4, size 8) at pc 1 (*(u64 *)(r10 - 0x4) = r0)');
  });

  it('the same checks through a copy of r10', () => {
    const below = faultOf(run('mov %r2, %r10\nadd %r2, -600\nldxdw %r0, [%r2+0]\nexit'));
    expect(below.message).toBe('fault at insn 2 (r0 = *(u64 *)(r2 + 0x0)): read of 8 bytes at stack-600, stack frame is stack-512 to stack+0');
    const above = faultOf(run('mov %r0, 0\nmov %r2, %r10\nstxw [%r2+8], %r0\nexit'));
    expect(above.message).toBe('fault at insn 2 (*(u32 *)(r2 + 0x8) = r0): write of 4 bytes at stack+8, stack frame is stack-512 to stack+0');
  });

  it("a callee cannot reach past its own frame into the caller's", () => {
    const f = faultOf(run('mov %r0, 0\ncall local f\nexit\nf:\nmov %r2, %r10\nstxdw [%r2+8], %r0\nexit'));
    expect(f.kind).toBe('write');
    expect(f.pc).toBe(4);
    expect(f.message).toBe('fault at insn 4 (*(u64 *)(r2 + 0x8) = r0): write of 8 bytes at stack#1+8, stack frame is stack#1-512 to stack#1+0');
  });
});

describe('access through a value that is not a pointer', () => {
  it('a number used as an address', () => {
    const f = faultOf(run('mov %r2, 100\nldxw %r0, [%r2+0]\nexit'));
    expect(f.kind).toBe('read');
    expect(f.message).toBe('fault at insn 1 (r0 = *(u32 *)(r2 + 0x0)): read of 4 bytes at 0x0000000000000064, which is not a pointer into any memory region');
  });

  it('a store through 0 and through -1', () => {
    expect(faultOf(run('mov %r0, 0\nmov %r6, 0\nstb [%r6-1], 0\nexit')).message).toBe(
      'fault at insn 2 (*(u8 *)(r6 - 0x1) = 0x0): write of 1 byte at 0xffffffffffffffff, which is not a pointer into any memory region',
    );
    expect(faultOf(run('mov %r0, 0\nmov %r6, -16\nstb [%r6+16], 0\nexit')).kind).toBe('write');
  });

  it('a pointer truncated by a 32-bit operation is a number', () => {
    const f = faultOf(run('mov32 %r1, %r1\nldxb %r0, [%r1+0]\nexit', new Uint8Array(8)));
    expect(f.message).toMatch(/^fault at insn 1 \(r0 = \*\(u8 \*\)\(r1 \+ 0x0\)\): read of 1 byte at 0x00000000[0-9a-f]{8}, which is not a pointer into any memory region$/);
  });
});

describe('the instruction budget', () => {
  const LOOP = 'mov %r0, 0\nloop:\nadd %r0, 1\njne %r0, -1, loop\nexit';

  it.each([1, 2, 3, 1000, 1001, 4095, 4096, 4097, 10_000, 100_001])('maxSteps %i on an endless loop: a budget fault with the instructions executed', (maxSteps) => {
    const r = run(LOOP, undefined, { maxSteps });
    const f = faultOf(r);
    expect(f.kind).toBe('budget');
    expect(f.message).toBe(`instruction budget exhausted at insn 1 (r0 += 0x1): the run reached its limit of ${maxSteps} instructions (raise it with --max-steps)`);
    // r0 counts the rounds; each round is 2 instructions after the first `mov`.
    expect(r.steps).toBe(1 + 2 * Number(r.reg(0)));
    expect(r.steps).toBeLessThanOrEqual(maxSteps);
    // The budget is checked per basic block (here 2 instructions), so at most one block is left unused.
    expect(maxSteps - r.steps).toBeLessThan(2);
    expect(r.pc).toBe(1);
    expect(f.pc).toBe(1);
  });

  it('a program that needs exactly maxSteps runs to its end', () => {
    const r = run('mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, loop\nexit', undefined, { maxSteps: 2 + 30 + 1 });
    expect(r.fault).toBeUndefined();
    expect(r.steps).toBe(33);
    expect(r.r0).toBe(10n);
    const short = run('mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, loop\nexit', undefined, { maxSteps: 32 });
    expect(faultOf(short).kind).toBe('budget');
  });

  it('in a subprogram, the fault names the callee instruction and counts the caller’s', () => {
    const r = run('mov %r0, 0\nmov %r1, 0\ncall local f\nexit\nf:\nadd %r1, 1\nja -2', undefined, { maxSteps: 501 });
    const f = faultOf(r);
    expect(f.kind).toBe('budget');
    expect(f.pc).toBe(4);
    expect(r.steps).toBe(3 + 2 * Number(r.reg(1)));
    expect(r.steps).toBeLessThanOrEqual(501);
  });
});

describe('a fault in the middle of a block', () => {
  it('reports the instructions before it, its own pc, and the registers as they were before it', () => {
    const r = run('mov %r0, 1\nmov %r2, 5\nadd %r0, %r2\nmov %r3, 9\nldxw %r3, [%r1+100]\nadd %r0, 1\nmov %r3, 0\nexit', new Uint8Array(8));
    const f = faultOf(r);
    expect(f.pc).toBe(4);
    expect(r.pc).toBe(4);
    expect(r.steps).toBe(4);
    expect(r.reg(0)).toBe(6n);
    expect(r.reg(2)).toBe(5n);
    expect(r.reg(3)).toBe(9n);
    expect(r.r0).toBe(6n);
  });

  it('after a loop and a call, the count is still exact', () => {
    const r = run(`
      mov %r6, 0
      mov %r7, 3
    loop:
      add %r6, 1
      sub %r7, 1
      jne %r7, 0, loop
      call local f
      mov %r0, 0
      exit
    f:
      mov %r0, 1
      mov %r2, 0
      stxdw [%r2+0], %r0
      exit`);
    const f = faultOf(r);
    expect(f.pc).toBe(10);
    expect(f.kind).toBe('write');
    expect(r.steps).toBe(2 + 3 * 3 + 1 + 2);
    expect(r.reg(0)).toBe(1n);
  });
});

describe('faults in helpers', () => {
  // A helper that reads r2 bytes at r1, as bpf_trace_printk reads its format.
  const printk: HelperFn = (m) => {
    m.readBytes(m.pc, m.argLo(1), m.argHi(1), m.argLo(2), 'bpf_trace_printk(fmt)');
    m.ret(0);
  };
  const refuse: HelperFn = (m) => {
    throw new Fault(`fault at insn ${m.pc} (${m.describeInsn(m.pc)}): bpf_ktime_get_ns refuses`, 'helper', m.pc);
  };
  const helpers = new Map([
    [6, printk],
    [5, refuse],
  ]);

  it('a helper reading past the memory it was given faults at the call, with the steps before it', () => {
    const r = run('mov %r0, 7\nmov %r2, 9\ncall 6\nmov %r0, 1\nexit', new Uint8Array(8), {}, helpers);
    const f = faultOf(r);
    expect(f.kind).toBe('read');
    expect(f.pc).toBe(2);
    expect(f.message).toBe('fault at insn 2 (bpf_trace_printk(fmt)): read of 9 bytes at mem+0, mem is 8 bytes');
    expect(r.steps).toBe(2);
    expect(r.reg(0)).toBe(7n);
    expect(run('mov %r0, 7\nmov %r2, 8\ncall 6\nexit', new Uint8Array(8), {}, helpers).fault).toBeUndefined();
  });

  it("a helper's own refusal is a helper fault", () => {
    const r = run('mov %r0, 7\ncall 5\nexit', undefined, {}, helpers);
    const f = faultOf(r);
    expect(f.kind).toBe('helper');
    expect(f.message).toBe('fault at insn 1 (call 0x5): bpf_ktime_get_ns refuses');
    expect(r.steps).toBe(1);
    expect(r.pc).toBe(1);
  });
});

describe('call depth', () => {
  // A helper that calls back into the program, as bpf_loop does: the callback runs one frame
  // deeper, and with a chain of calls of its own goes past the kernel's 8 frames at run time.
  function withCallback(chain: number) {
    const lines = ['lddw %r2, 0', 'mov %r1, 0', 'call 181', 'exit', 'c1:', 'mov %r0, 0'];
    for (let i = 1; i <= chain; i++) lines.push(`call local c${i + 1}`, 'exit', `c${i + 1}:`, 'mov %r0, 0');
    lines.push('exit');
    const code = assemble(lines.join('\n'));
    // lddw r2 of the callback: src BPF_PSEUDO_FUNC, imm the pc of c1 relative to the next slot.
    code.src[0] = 4;
    code.imm[0] = 5 - 1;
    let p: LoadedProgram | undefined;
    const loop: HelperFn = (m) => {
      const start = m.argLo(2);
      p!.compiled.invoke(start, m.depth + 1, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      m.ret(0);
    };
    p = new LoadedProgram(programFromBytecode(code), new Machine(), { entryRegs: RAW_ENTRY_REGS, helpers: new Map([[181, loop]]) });
    return runOnMemory(p, new Uint8Array(0));
  }

  it('a callback chain of 7 frames below the entry runs', () => {
    const r = withCallback(6);
    expect(r.fault).toBeUndefined();
  });

  it('one more frame is a call fault at the call that would make the ninth', () => {
    const r = withCallback(7);
    const f = faultOf(r);
    expect(f.kind).toBe('call');
    // The call in c8 (the callback at depth 1, so c8 runs at depth 7) would open frame 9.
    const pc = 5 + 7 * 3;
    expect(f.pc).toBe(pc - 2);
    expect(f.message).toBe(`fault at insn ${pc - 2} (call 0x1): the call stack is too deep (the kernel allows 8 frames)`);
  });
});

describe('reads of values never written', () => {
  it('a register: a warning, and with strict checks a fault before the instruction runs', () => {
    const lax = run('mov %r0, 1\nadd %r0, %r3\nexit');
    expect(lax.fault).toBeUndefined();
    expect(lax.warnings).toEqual([{ pc: 1, step: 1, message: 'warning at insn 1 (r0 += r3): r3 is read before it is written' }]);
    const strict = run('mov %r0, 1\nadd %r0, %r3\nexit', undefined, { strict: true });
    const f = faultOf(strict);
    expect(f.kind).toBe('uninit');
    expect(f.message).toBe('fault at insn 1 (r0 += r3): r3 is read before it is written');
    expect(strict.steps).toBe(1);
    expect(strict.reg(0)).toBe(1n);
  });

  it('r1 and r2 are set on entry to a run on memory, r3-r9 are not', () => {
    expect(run('mov %r0, %r2\nexit', new Uint8Array(5), { strict: true }).r0).toBe(5n);
    expect(run('mov %r0, %r1\nmov %r0, %r9\nexit').warnings.map((w) => w.message)).toEqual(['warning at insn 1 (r0 = r9): r9 is read before it is written']);
  });

  it('r1-r5 after a call, and r0 at exit when nothing wrote it', () => {
    const r = run('mov %r1, 1\ncall local f\nmov %r0, %r1\nexit\nf:\nmov %r0, 0\nexit');
    expect(r.warnings.map((w) => w.message)).toEqual(['warning at insn 2 (r0 = r1): r1 is read before it is written']);
    expect(run('mov %r1, 1\nexit').warnings.map((w) => w.message)).toEqual(['warning at insn 1 (exit): r0 is read before it is written']);
  });

  it('only the reads that happen: a path that skips the read warns about nothing', () => {
    const src = 'ldxb %r2, [%r1]\nmov %r0, 0\njeq %r2, 0, +1\nmov %r0, %r5\nexit';
    expect(run(src, Uint8Array.of(0)).warnings).toEqual([]);
    expect(run(src, Uint8Array.of(1)).warnings.map((w) => w.pc)).toEqual([3]);
  });

  it('stack bytes: never written, partly written, through a pointer, and by an atomic', () => {
    expect(run('ldxdw %r0, [%r10-8]\nexit').warnings.map((w) => w.message)).toEqual(['warning at insn 0 (r0 = *(u64 *)(r10 - 0x8)): read of 8 bytes at stack-8, which were never written']);
    expect(run('stb [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit').warnings.map((w) => w.message)).toEqual([
      'warning at insn 1 (r0 = *(u64 *)(r10 - 0x8)): read of 8 bytes at stack-8, 7 of which were never written',
    ]);
    expect(run('mov %r2, %r10\nadd %r2, -16\nldxw %r0, [%r2+4]\nexit').warnings.map((w) => w.message)).toEqual([
      'warning at insn 2 (r0 = *(u32 *)(r2 + 0x4)): read of 4 bytes at stack-12, which were never written',
    ]);
    expect(run('mov %r1, 1\nlock add [%r10-8], %r1\nmov %r0, 0\nexit').warnings.map((w) => w.message)).toEqual([
      'warning at insn 1 (lock *(u64 *)(r10 - 0x8) += r1): read of 8 bytes at stack-8, which were never written',
    ]);
    const strict = run('mov %r0, 3\nstw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit', undefined, { strict: true });
    expect(faultOf(strict).kind).toBe('uninit');
    expect(strict.steps).toBe(2);
    expect(strict.reg(0)).toBe(3n);
  });

  it('stack bytes written by an earlier run or an earlier call at the same depth read as never written', () => {
    // mem[0] = 1: the write happens; 0: only the read. One program, runs one after the other.
    const again = (src: string) => {
      const p = load(src);
      const first = runOnMemory(p, Uint8Array.of(1));
      const second = runOnMemory(p, Uint8Array.of(0));
      return [first.warnings.map((w) => w.message), second.warnings.map((w) => w.message)];
    };
    // Through r10, in the entry function's frame.
    expect(again('ldxb %r2, [%r1]\njeq %r2, 0, +1\nstdw [%r10-8], 7\nldxdw %r0, [%r10-8]\nexit')).toEqual([
      [],
      ['warning at insn 3 (r0 = *(u64 *)(r10 - 0x8)): read of 8 bytes at stack-8, which were never written'],
    ]);
    // Through a pointer, below every r10-relative store of the program.
    expect(again('ldxb %r2, [%r1]\nmov %r3, %r10\nadd %r3, -300\njeq %r2, 0, +1\nstdw [%r3], 7\nstb [%r10-1], 1\nldxdw %r0, [%r3]\nexit')).toEqual([
      [],
      ['warning at insn 6 (r0 = *(u64 *)(r3 + 0x0)): read of 8 bytes at stack-300, which were never written'],
    ]);
    // By a helper, then read in the next run.
    const fill: HelperFn = (m) => {
      m.writeBytes(m.pc, m.R[2]!, m.R[3]!, new Uint8Array(8).fill(9), 'helper 1 writes r1');
      m.R[0] = 0;
      m.R[1] = 0;
    };
    const p = load('ldxb %r2, [%r1]\nmov %r1, %r10\nadd %r1, -400\njeq %r2, 0, +1\ncall 1\nldxdw %r0, [%r10-400]\nexit', new Map([[1, fill]]));
    expect(runOnMemory(p, Uint8Array.of(1)).warnings).toEqual([]);
    expect(runOnMemory(p, Uint8Array.of(0)).warnings.map((w) => w.message)).toEqual(['warning at insn 5 (r0 = *(u64 *)(r10 - 0x190)): read of 8 bytes at stack-400, which were never written']);
    // In a called function's frame, by the previous call at the same depth.
    const calls = load('mov %r1, 1\ncall local f\nmov %r1, 0\ncall local f\nexit\nf:\njeq %r1, 0, +1\nstdw [%r10-16], 5\nldxdw %r0, [%r10-16]\nexit');
    expect(runOnMemory(calls, new Uint8Array(0)).warnings.map((w) => w.message)).toEqual(['warning at insn 7 (r0 = *(u64 *)(r10 - 0x10)): read of 8 bytes at stack#1-16, which were never written']);
  });

  it('stack bytes written by a plain store count as written for an atomic on r10', () => {
    const r = run('stdw [%r10-8], 40\nmov %r1, 2\nlock add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit', undefined, { strict: true });
    expect(r.fault).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.r0).toBe(42n);
  });

  it('each run starts with the stack unwritten again', () => {
    const p = load('ldxb %r2, [%r1]\njeq %r2, 0, +1\nstdw [%r10-8], 1\nldxdw %r0, [%r10-8]\nexit');
    expect(runOnMemory(p, Uint8Array.of(1)).warnings).toEqual([]);
    expect(runOnMemory(p, Uint8Array.of(0)).warnings.map((w) => w.pc)).toEqual([3]);
  });

  it('warnings carry the step at which they happened', () => {
    const r = run('mov %r0, 0\nmov %r1, 3\nloop:\nsub %r1, 1\njne %r1, 0, loop\nadd %r0, %r4\nexit');
    expect(r.warnings).toEqual([{ pc: 4, step: 8, message: 'warning at insn 4 (r0 += r4): r4 is read before it is written' }]);
  });
});
