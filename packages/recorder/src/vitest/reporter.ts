// `@rewind/recorder/vitest/reporter`: lists every trace the `bpf` fixture kept, with the command
// that opens it, at the end of the run. Add it to the root config next to the default reporter:
//   reporters: ['default', '@rewind/recorder/vitest/reporter']

import type { Reporter, TestCase } from 'vitest/node';
import type { KeptTrace } from './index.js';

export default class RewindTracesReporter implements Reporter {
  private readonly kept: { test: string; trace: KeptTrace }[] = [];

  onTestRunStart(): void {
    this.kept.length = 0;
  }

  onTestCaseResult(testCase: TestCase): void {
    const traces = (testCase.meta() as { rewindTraces?: KeptTrace[] }).rewindTraces ?? [];
    for (const trace of traces) this.kept.push({ test: testCase.fullName, trace });
  }

  onTestRunEnd(): void {
    if (!this.kept.length) return;
    const failed = this.kept.filter((k) => k.trace.failed).length;
    const lines = [`\nRewind traces (${this.kept.length}${failed ? `, ${failed} of failing tests` : ''}):`];
    for (const k of this.kept) lines.push(`  ${k.trace.failed ? '✗' : '✓'} ${k.test}`, `      ${k.trace.command}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
}
