// A recorder killed with SIGKILL at random moments: the file it leaves must read as truncated,
// with every complete frame intact. The child process runs the real writer: this package's
// container sources, compiled on the fly with TypeScript (Node 20 cannot run .ts files).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import ts from 'typescript';
import { TraceReader, TraceTruncatedError } from '../index.js';

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rewind-kill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The payload of frame n: its size and bytes follow from n alone, so the parent can check it. */
function payload(n: number): Uint8Array {
  const size = (n * 7919) % 65536;
  const p = new Uint8Array(size);
  for (let j = 0; j < size; j++) p[j] = (n * 31 + j * 7) & 0xff;
  return p;
}

const CHILD = `
import { TraceWriter } from './src/container/writer.js';
${payload.toString()}
const w = TraceWriter.create(process.argv[2], { meta: { child: process.pid } });
process.stdout.write('ready\\n');
for (let n = 1; n <= 4000; n++) w.append(n % 16 === 1 ? 'keyframe' : 'chunk', { n }, payload(n));
setInterval(() => {}, 1000); // wait to be killed
`;

/** Compiles src/container/*.ts (not the tests) into dir/src/container, ready for node. */
function buildChild(): string {
  const out = join(dir, 'src', 'container');
  mkdirSync(out, { recursive: true });
  for (const name of readdirSync(here)) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
    let js = ts.transpileModule(readFileSync(join(here, name), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    // The errors' base class lives in @rewind/vm, whose built files may not exist yet.
    js = js.replace(`from '@rewind/vm/core'`, `from './vm-errors.js'`);
    writeFileSync(join(out, name.replace(/\.ts$/, '.js')), js);
  }
  const vmErrors = join(here, '..', '..', '..', 'vm', 'src', 'errors.ts');
  writeFileSync(join(out, 'vm-errors.js'), ts.transpileModule(readFileSync(vmErrors, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
  // format.ts reads ../../package.json for the version; msgpackr resolves through node_modules.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', version: '0.0.0-kill-test' }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(realpathSync(join(here, '..', '..', 'node_modules', 'msgpackr')), join(dir, 'node_modules', 'msgpackr'));
  writeFileSync(join(dir, 'child.mjs'), CHILD);
  return join(dir, 'child.mjs');
}

describe('a recorder killed at a random moment', () => {
  let child = '';
  beforeAll(() => {
    child = buildChild();
  });

  /** Starts the writer, kills it `delay` ms after it is ready (or after spawn), returns the file. */
  async function killAt(run: number, delay: number, afterReady: boolean): Promise<string> {
    const path = join(dir, `killed-${run}.rwt`);
    const proc = spawn(process.execPath, [child, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
    if (afterReady) {
      await new Promise<void>((resolve, reject) => {
        proc.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        proc.on('exit', () => reject(new Error(`the writer exited before it was ready: ${stderr}`)));
      });
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    proc.kill('SIGKILL');
    expect(await exited, stderr).toBe('SIGKILL');
    return path;
  }

  test('leaves a truncated trace whose complete frames all read back', async () => {
    // Random moments (seeded, so a failure reproduces): some during start-up, most while the
    // writer appends frames of up to 64 KiB as fast as it can.
    const rand = prng(2024);
    const moments: [number, boolean][] = Array.from({ length: 16 }, (_, i) => (i < 4 ? [Math.floor(rand() * 60), false] : [Math.floor(rand() * 80), true]));
    let framesSeen = 0;
    let tornRuns = 0; // runs killed in the middle of a write
    for (const [run, [delay, afterReady]] of moments.entries()) {
      const path = await killAt(run, delay, afterReady);
      if (!existsSync(path)) {
        expect(afterReady, 'the file exists once the writer said it was ready').toBe(false);
        continue;
      }
      let r: TraceReader;
      try {
        r = TraceReader.open(path);
      } catch (e) {
        // Killed before the header frame was complete: nothing to replay, and it says so.
        expect(e, String(e)).toBeInstanceOf(TraceTruncatedError);
        expect(afterReady).toBe(false);
        continue;
      }
      expect(r.truncated).toBe(true);
      expect(r.header.meta.child).toEqual(expect.any(Number));
      expect(r.size - r.dataEnd).toBeLessThan(65536 + 64); // at most one torn frame
      for (const f of r.frames.slice(1)) {
        expect(f.header).toEqual({ n: f.number });
        expect(f.kind).toBe(f.number % 16 === 1 ? 'keyframe' : 'chunk');
        expect(Buffer.compare(r.readPayload(f.number), payload(f.number))).toBe(0);
      }
      r.verify();
      framesSeen += r.frames.length - 1;
      if (r.size > r.dataEnd) tornRuns++;
      r.close();
    }
    console.log(`killed writers: ${framesSeen} complete frames read back; ${tornRuns} of ${moments.length} runs ended in a torn frame`);
    expect(framesSeen).toBeGreaterThan(0);
  });
});
