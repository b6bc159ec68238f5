// `rewind replay <trace>`: opens a recorded trace in the time-travel debugger.

import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { RewindError, type Btf } from '@rewind/vm';
import { Debugger } from '../debugger/debugger.js';
import type { TraceView } from '../debugger/trace.js';
import { UsageError } from './inputs.js';

export interface ReplayArgs {
  trace: string;
  at?: number;
  run?: number;
}

/** Exit status of `replay` without a terminal: nothing was shown. */
export const NO_TERMINAL_STATUS = 2;

/** Opens a trace with the recorder's reader (`Trace.open`). */
export async function openTrace(path: string): Promise<TraceView> {
  if (!existsSync(path)) throw new RewindError(`${path}: no such trace file`);
  const recorder = (await import('@rewind/recorder')) as unknown as { Trace?: { open(path: string): TraceView } };
  if (!recorder.Trace) throw new RewindError(`${path}: this build of @rewind/recorder has no trace reader (Trace)`);
  return recorder.Trace.open(path);
}

/** Whether the debugger can take over the terminal: both ends must be one. */
export function haveTerminal(): boolean {
  return !!process.stdout.isTTY && !!process.stdin.isTTY;
}

export function noTerminalMessage(command: string, trace: string): string {
  return `rewind ${command}: not a terminal, so the debugger does not start; print the state at a step with: rewind inspect ${trace} --at N\n`;
}

export interface OpenOptions {
  at?: number;
  run?: number;
  btf?: Btf;
  sourceDirs?: string[];
}

/** What a trace recorded by `rewind record` / `debug` adds to TraceView: the object's BTF and the program's path. */
interface RecordedTrace {
  btf?: Btf;
  meta?: { user?: { program?: unknown } };
}

/** Line info names files relative to where the object was compiled: look beside the recorded program and one folder up. */
export function sourceDirsOf(trace: TraceView): string[] {
  const program = (trace as TraceView & RecordedTrace).meta?.user?.program;
  if (typeof program !== 'string') return [];
  return [dirname(program), dirname(dirname(program))];
}

/** Runs the full-screen debugger on an opened trace until the user quits. */
export async function debugTrace(trace: TraceView, opts: OpenOptions): Promise<void> {
  const btf = opts.btf ?? (trace as TraceView & RecordedTrace).btf;
  const sourceDirs = [dirname(trace.path), ...sourceDirsOf(trace), ...(opts.sourceDirs ?? [])];
  const dbg = new Debugger(trace, { at: opts.at, run: opts.run, btf, sourceDirs, columns: process.stdout.columns, rows: process.stdout.rows });
  // React's development build diffs props for its profiler with JSON.stringify, which throws on the
  // BigInt registers the panes draw (and costs a frame's time): the terminal runs the production build.
  process.env.NODE_ENV ??= 'production';
  // ink draws nothing but the last frame when the environment says CI (CI=true, as CI jobs and
  // some shells set it); this is an interactive terminal, whatever the environment says. ink
  // reads the variables once, when it loads, which is next.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  // ink's modules take ~0.5 s to load one by one; a build that bundles the UI (esbuild, like the
  // conformance plugin) leaves start.bundle.js beside start.js, which loads in a third of that.
  const bundle = '../ui/start.bundle.js';
  const { startTui } = (await import(bundle).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    return import('../ui/start.js');
  })) as typeof import('../ui/start.js');
  await startTui(dbg);
}

export async function replay(args: ReplayArgs): Promise<number> {
  if (args.at !== undefined && args.run !== undefined) throw new UsageError('--at and --run each say where to start: give one');
  const trace = await openTrace(args.trace);
  try {
    // Checks --at / --run before the terminal is taken over.
    new Debugger(trace, { at: args.at, run: args.run });
    if (!haveTerminal()) {
      process.stdout.write(noTerminalMessage('replay', args.trace));
      return NO_TERMINAL_STATUS;
    }
    await debugTrace(trace, { at: args.at, run: args.run });
    return 0;
  } finally {
    trace.close();
  }
}
