// Every run (packet) with its verdict; `v` filters by verdict, Enter jumps to the selected run.

import { Text } from 'ink';
import { paneRows, type PaneId } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { useColors } from '../theme.js';
import type { PaneBodyProps } from './SourcePane.js';

const VERDICT_COLOR: Record<string, string> = { XDP_DROP: 'red', XDP_ABORTED: 'red', TC_ACT_SHOT: 'red', XDP_PASS: 'green', TC_ACT_OK: 'green', XDP_TX: 'cyan', XDP_REDIRECT: 'cyan' };

export function RunsPane({ dbg, width, height, focused, tabs }: PaneBodyProps) {
  const state = dbg.current();
  const c = useColors();
  const rows = paneRows.runs(dbg);
  const h = height - 1;
  const cur = rows.findIndex((r) => r.run.index === state.run);
  const start = windowStart(rows.length, h, focused ? dbg.selection.runs : Math.max(0, cur));
  return (
    <Pane id="runs" width={width} height={height} focused={focused} tabs={tabs} info={`${rows.length}${dbg.runFilter ? ` ${dbg.runFilter}` : ''} of ${dbg.trace.runs.length}`}>
      {rows.slice(start, start + h).map((r, i) => (
        <Text key={r.run.index} wrap="truncate" inverse={focused && start + i === dbg.selection.runs} bold={r.run.index === state.run}>
          {r.run.index === state.run ? '▶' : ' '}
          <Text color={c(VERDICT_COLOR[r.run.verdict] ?? 'white')}>{fit(r.text, width - 1)}</Text>
        </Text>
      ))}
    </Pane>
  );
}
