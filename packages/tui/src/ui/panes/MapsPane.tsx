// Map entries at this step (through their BTF types when the object is known); entries this step
// touched stand out; `d` shows the difference from the start of the run instead.

import { Text } from 'ink';
import { paneRows, type PaneId } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { useColors } from '../theme.js';
import type { PaneBodyProps } from './SourcePane.js';

export function MapsPane({ dbg, width, height, focused, tabs }: PaneBodyProps) {
  const state = dbg.current();
  const c = useColors();
  const rows = paneRows.maps(dbg, state);
  const h = height - 1;
  const changed = rows.findIndex((r) => r.changed);
  const start = windowStart(rows.length, h, focused ? dbg.selection.maps : Math.max(0, changed));
  return (
    <Pane id="maps" width={width} height={height} focused={focused} tabs={tabs} info={dbg.mapDiff ? 'diff from run start' : undefined}>
      {rows.length === 0 ? <Text dimColor>no maps</Text> : null}
      {rows.slice(start, start + h).map((r, i) => (
        <Text key={`${r.map}:${r.key ?? ''}:${i}`} wrap="truncate" bold={r.key === undefined || r.changed} color={r.changed ? c('yellow') : undefined} inverse={focused && start + i === dbg.selection.maps}>
          {fit(r.key === undefined ? r.text : `  ${r.text}`, width)}
        </Text>
      ))}
    </Pane>
  );
}
