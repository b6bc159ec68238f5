// The status line: trace, run K/R and its verdict, step N/M, function and source line, mode.

import { Text } from 'ink';
import { baseName, type Debugger } from '../debugger/debugger.js';
import type { StepState } from '../debugger/trace.js';
import { fit } from './Pane.js';

export function statusText(dbg: Debugger, s: StepState): string {
  const run = dbg.trace.runs[s.run]!;
  const where = s.source ? `${baseName(s.source.file)}:${s.source.line}` : `pc ${s.pc}`;
  // A lone pane digit (1-8) focused its pane; it only reads as a count once more digits follow.
  const counting = dbg.count.length > 1 || /^[09]$/.test(dbg.count);
  const mode = dbg.busy ? `${dbg.busy.what}…` : dbg.mode === 'command' ? 'command' : counting ? `count ${dbg.count}` : dbg.pending ? `${dbg.pending}…` : dbg.mode;
  const end = s.atEnd ? (s.fault ? ' FAULT' : ' END') : '';
  // Most telling first: a narrow terminal cuts the end.
  return [
    `step ${s.step}/${dbg.trace.lastStep}${end}`,
    `run ${s.run}/${dbg.trace.runs.length - 1} ${run.verdict}`,
    `${s.func} ${where}`,
    `pc ${s.pc}`,
    mode,
    baseName(dbg.trace.path) + (dbg.trace.truncated ? ' (truncated)' : ''),
  ].join(' │ ');
}

export function StatusLine({ dbg, width }: { dbg: Debugger; step: number; width: number }) {
  const state = dbg.current();
  return (
    <Text inverse bold wrap="truncate">
      {fit(statusText(dbg, state), width, true)}
    </Text>
  );
}
