// Running the kernel's tools (bpftool, mount, clang) and turning their failures into one-line errors.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RewindError } from '../errors.js';

/** The kernel or one of its tools refused or failed; `log` holds the tool's full output (the verifier log). */
export class KernelError extends RewindError {
  override name = 'KernelError';
  constructor(
    message: string,
    readonly log = '',
  ) {
    super(message);
  }
}

/** bpftool and mount live in sbin, which a non-login PATH may lack. */
const SEARCH_PATH = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => d !== '');

/** The full path of a program on PATH (or in sbin), or undefined. */
export function findTool(name: string): string | undefined {
  // REWIND_BPFTOOL=/path/to/bpftool (and so on for other tools) chooses the binary.
  const override = process.env[`REWIND_${name.toUpperCase()}`];
  if (override !== undefined) return existsSync(override) ? override : undefined;
  for (const dir of SEARCH_PATH) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Runs a tool and returns its stdout; throws KernelError with the tool's stderr when it fails. */
export function runTool(tool: string, args: readonly string[], what: string): string {
  try {
    return execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30, timeout: 120_000 });
  } catch (e) {
    const log = stderrOf(e);
    throw new KernelError(`${what}: ${firstLine(log)}`, log);
  }
}

export function stderrOf(e: unknown): string {
  const err = e as { stderr?: Buffer | string; stdout?: Buffer | string; message?: string };
  const text = [err.stderr, err.stdout].map((s) => (s ? String(s).trim() : '')).filter((s) => s !== '').join('\n');
  return text || err.message || String(e);
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'failed';
}
