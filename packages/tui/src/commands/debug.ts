// `rewind debug <prog.o | prog.c | file.data> [inputs]`: records the program's runs into
// ./traces/<program>-<n>.rwt (a .c file is compiled first) and opens the trace in the debugger.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RewindError } from '@rewind/vm';
import type { InputArgs } from './inputs.js';
import { recordTrace } from './record.js';
import { debugTrace, haveTerminal, noTerminalMessage, openTrace } from './replay.js';

export type DebugArgs = InputArgs;

/** Stand-ins for the asm/ headers that -target bpf lacks (examples/include). */
const EXAMPLE_INCLUDE = fileURLToPath(new URL('../../../../examples/include', import.meta.url));

/** Compiles a C file as `clang -O2 -g -target bpf -c` into `outDir`: clang-19 first, then clang. */
export function compileC(file: string, outDir: string, compilers: readonly string[] = ['clang-19', 'clang']): string {
  if (!existsSync(file)) throw new RewindError(`${file}: no such file`);
  const out = join(outDir, basename(file).replace(/\.c$/, '') + '.o');
  const args = ['-O2', '-g', '-target', 'bpf', ...(existsSync(EXAMPLE_INCLUDE) ? ['-I', EXAMPLE_INCLUDE] : []), '-c', file, '-o', out];
  for (const clang of compilers) {
    const r = spawnSync(clang, args, { encoding: 'utf8' });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') continue;
    if (r.status !== 0) {
      process.stderr.write(r.stderr);
      throw new RewindError(`${file}: ${clang} could not compile it (exit ${r.status}); its messages are above`);
    }
    return out;
  }
  throw new RewindError(`${file}: compiling C needs clang (${compilers.join(' or ')} on PATH, with the BPF target); install it, or give a compiled .o`);
}

export async function debug(args: DebugArgs, opts: { command?: string; tracesDir?: string } = {}): Promise<number> {
  const command = opts.command ?? 'debug';
  let tmp: string | undefined;
  let program = args.program;
  try {
    if (program.endsWith('.c')) {
      tmp = mkdtempSync(join(tmpdir(), 'rewind-debug-'));
      program = compileC(program, tmp);
    }
    const name = basename(args.program).replace(/\.(c|o|data)$/, '');
    const rec = recordTrace({ ...args, program }, { dir: opts.tracesDir ?? join(process.cwd(), 'traces'), name, command: `rewind ${command}`, progress: false });
    const where = relative(process.cwd(), rec.path);
    const shown = where.startsWith('..') ? rec.path : where;
    if (!haveTerminal()) {
      process.stdout.write(`rewind ${command}: recorded ${rec.total} run${rec.total === 1 ? '' : 's'} (${rec.steps} steps) into ${shown}\n`);
      process.stdout.write(noTerminalMessage(command, shown));
      return 0;
    }
    const trace = await openTrace(rec.path);
    try {
      await debugTrace(trace, {});
    } finally {
      trace.close();
    }
    process.stdout.write(`rewind ${command}: the trace is ${shown} (rewind replay ${shown} opens it again)\n`);
    return 0;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
