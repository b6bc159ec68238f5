// `rewind test`: runs declarative test files — uBPF's `.data` files and Rewind's `*.rewind.json`
// specs (TESTS.md) — and prints a line per test and a summary. With --record-failures, a failing
// test leaves its trace and the command that opens it where it failed.

import { relative } from 'node:path';
import { collectSpecFiles, runSpecFiles, TestInputError, traceLine, type SpecTestResult } from '@rewind/recorder/testing';
import { UsageError } from './inputs.js';

export interface TestArgs {
  paths: string[];
  recordFailures?: string;
}

const shown = (file: string) => {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
};

function line(r: SpecTestResult): string[] {
  const file = shown(r.file);
  const title = r.name === file || file.endsWith(`/${r.name}`) || file === r.name ? file : `${file} › ${r.name}`;
  if (r.status === 'pass') return [`pass  ${title}`];
  if (r.status === 'skip') return [`skip  ${title}: ${r.failures.join('; ')}`];
  const out = [`FAIL  ${title}`, ...r.failures.map((f) => `      ${f}`)];
  const cmd = traceLine(r);
  if (cmd) out.push(`      trace: ${cmd}`);
  return out;
}

export async function test(args: TestArgs): Promise<number> {
  if (!args.paths.length) throw new UsageError('rewind test: name spec files or folders (.data, *.rewind.json)');
  let results: SpecTestResult[];
  try {
    const files = collectSpecFiles(args.paths);
    if (!files.length) throw new UsageError(`${args.paths.join(', ')}: no test files (.data, *.rewind.json) found`);
    results = runSpecFiles(files, {
      recordFailures: args.recordFailures,
      onResult: (r) => process.stdout.write(line(r).join('\n') + '\n'),
    });
  } catch (e) {
    if (e instanceof TestInputError) throw new UsageError(e.message);
    throw e;
  }
  const count = (s: SpecTestResult['status']) => results.filter((r) => r.status === s).length;
  const failed = count('fail');
  const parts = [`${count('pass')} passed`, `${failed} failed`, ...(count('skip') ? [`${count('skip')} skipped`] : [])];
  const kept = results.filter((r) => r.trace).length;
  process.stdout.write(`\n${results.length} test${results.length === 1 ? '' : 's'}: ${parts.join(', ')}${kept ? `; ${kept} trace${kept === 1 ? '' : 's'} in ${args.recordFailures}` : ''}\n`);
  return failed ? 1 : 0;
}
