// `rewind verify`: re-executes a trace's runs from its recorded inputs and checks every step.

import { verifyTrace } from '@rewind/recorder';

export async function verify(args: { trace: string }): Promise<number> {
  const r = verifyTrace(args.trace);
  const cut = r.truncated ? ' (the trace was cut short: its complete runs were checked)' : '';
  if (r.runs === 0) {
    process.stdout.write(`${args.trace}: no complete run to re-execute${cut}\n`);
    return 0;
  }
  if (r.difference) {
    process.stdout.write(`${args.trace}: differs: ${r.difference}\n`);
    return 1;
  }
  process.stdout.write(`${args.trace}: ${r.runs} run${r.runs === 1 ? '' : 's'}, ${(r.steps + 1).toLocaleString('en-US')} steps re-executed: every step agrees${cut}\n`);
  return 0;
}
