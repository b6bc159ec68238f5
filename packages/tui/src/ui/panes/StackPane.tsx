// The frames of the call chain, innermost first, each from its lowest used byte up to r10;
// the bytes the last step wrote stand out.

import { Text } from 'ink';
import { paneRows } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { HexRowText } from './HexRow.js';
import type { PaneBodyProps } from './SourcePane.js';

export function StackPane({ dbg, width, height, focused, tabs }: PaneBodyProps) {
  const state = dbg.current();
  const rows = paneRows.stack(dbg, state);
  const h = height - 1;
  const per = dbg.bytesPerRow.stack;
  const selRow = Math.floor(dbg.selection.stack / per);
  const written = rows.findIndex((r) => r.marked.some(Boolean));
  const start = windowStart(rows.length, h, focused ? selRow : written >= 0 ? written : 0);
  return (
    <Pane id="stack" width={width} height={height} focused={focused} tabs={tabs} info={`depth ${state.depth}`}>
      {rows.slice(start, start + h).map((r, i) =>
        r.header !== undefined ? (
          <Text key={`h${r.depth}`} bold wrap="truncate">
            {fit(r.header, width)}
          </Text>
        ) : (
          <HexRowText key={`${r.depth}:${r.offset}`} label={`${`${r.depth ? `#${r.depth}` : ''}${r.offset}`.padStart(7)}`} row={r} width={width} selected={focused && start + i === selRow ? dbg.selection.stack % per : undefined} />
        ),
      )}
    </Pane>
  );
}
