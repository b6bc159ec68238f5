// `rewind conformance-plugin`: the plugin protocol of the bpf_conformance suite. The program
// comes as hex bytes in --program, or on standard input when that option is absent; the memory
// as hex bytes in the positional argument (before or after the options). r1 points at the
// memory and r2 holds its length; r0 is printed in hex. Load and run errors exit non-zero.

import { readFileSync } from 'node:fs';
import { decode, LoadedProgram, Machine, programFromBytecode, runOnMemory, RAW_ENTRY_REGS, RewindError, DEFAULT_MAX_STEPS } from '@rewind/vm/core';

// Like parsePacketHex in @rewind/vm, but the plugin loads only the VM core (@rewind/vm/core) to
// start fast, and accepts the `0x` prefixes and commas the suite's tools write.
export function parseHexBytes(text: string, what: string): Uint8Array {
  const clean = text.replace(/0x/gi, '').replace(/[\s,]+/g, '');
  if (clean.length % 2 !== 0) throw new RewindError(`${what}: odd number of hex digits (${clean.length})`);
  const bad = clean.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw new RewindError(`${what}: '${clean[bad]}' is not a hex digit (at digit ${bad})`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

interface PluginArgs {
  program?: string;
  memory: string[];
  maxSteps: number;
}

function parseArgs(args: string[]): PluginArgs {
  const out: PluginArgs = { memory: [], maxSteps: DEFAULT_MAX_STEPS };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const [name, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (name === '--program') out.program = value();
    else if (name === '--max-steps') {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v <= 0) throw new UsageError(`--max-steps must be a positive integer`);
      out.maxSteps = v;
    } else if (name.startsWith('-') && name.length > 1 && !/^-?[0-9a-fA-F\s]+$/.test(name)) throw new UsageError(`unknown option ${name}`);
    else out.memory.push(a);
  }
  return out;
}

export class UsageError extends RewindError {
  override name = 'UsageError';
}

/** Returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const opts = parseArgs(args);
    const programHex = opts.program ?? readFileSync(0, 'utf8');
    const bytes = parseHexBytes(programHex, opts.program !== undefined ? '--program' : 'program on standard input');
    if (bytes.length % 8 !== 0) throw new RewindError(`program: ${bytes.length} bytes is not a whole number of 8-byte instructions`);
    const memory = parseHexBytes(opts.memory.join(' '), 'memory');
    const machine = new Machine();
    const loaded = new LoadedProgram(programFromBytecode(decode(bytes)), machine, { entryRegs: RAW_ENTRY_REGS });
    const result = runOnMemory(loaded, memory, { maxSteps: opts.maxSteps });
    if (result.fault) {
      process.stderr.write(`${result.fault.message}\n`);
      return 1;
    }
    process.stdout.write(`${result.r0.toString(16)}\n`);
    return 0;
  } catch (e) {
    if (e instanceof RewindError) {
      process.stderr.write(`rewind conformance-plugin: ${e.message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}
