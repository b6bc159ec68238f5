// Helper calls, trace_printk output, map operations, warnings: the run's events up to this step.

import { Text } from 'ink';
import { paneRows, type PaneId } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { useColors } from '../theme.js';
import type { PaneBodyProps } from './SourcePane.js';

export function EventsPane({ dbg, width, height, focused, tabs }: PaneBodyProps) {
  const state = dbg.current();
  const c = useColors();
  const rows = paneRows.events(dbg, state);
  const h = height - 1;
  const start = focused ? windowStart(rows.length, h, dbg.selection.events) : Math.max(0, rows.length - h);
  return (
    <Pane id="events" width={width} height={height} focused={focused} tabs={tabs} info={`${rows.length} so far`}>
      {rows.length === 0 ? <Text dimColor>no events yet in this run</Text> : null}
      {rows.slice(start, start + h).map((r, i) => (
        <Text key={start + i} wrap="truncate" inverse={focused && start + i === dbg.selection.events} bold={r.step === state.step} color={r.kind === 'warning' || r.kind === 'fault' ? c('red') : undefined}>
          {fit(`${String(r.step).padStart(6)} ${r.text}`, width)}
        </Text>
      ))}
    </Pane>
  );
}
