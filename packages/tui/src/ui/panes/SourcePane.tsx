// C source around the current line (the real file when found, else the lines BTF line info carries).

import { Text } from 'ink';
import type { Debugger } from '../../debugger/debugger.js';
import { baseName } from '../../debugger/debugger.js';
import { paneRows, type PaneId } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { useColors } from '../theme.js';

/**
 * What every pane gets. The step's state is not a prop: the panes read it from `dbg.current()`
 * (built once per step), because React's development build stringifies changed props for its
 * profiler, and a state holds BigInt registers, which JSON.stringify refuses.
 */
export interface PaneBodyProps {
  dbg: Debugger;
  /** The step drawn (the cursor); a new step draws the panes again. */
  step: number;
  width: number;
  height: number;
  focused: boolean;
  /** Panes sharing this one's slot, shown as tabs in the title. */
  tabs?: readonly PaneId[];
}

export function SourcePane({ dbg, width, height, focused }: PaneBodyProps) {
  const c = useColors();
  const state = dbg.current();
  const src = paneRows.source(dbg, state);
  const cur = paneRows.cursorRow(dbg, state, 'source');
  const sel = dbg.follow ? cur : dbg.selection.source;
  const h = height - 1;
  const start = windowStart(src.lines.length, h, sel);
  const info = src.file ? `${baseName(src.file)}${src.found ? '' : ' (lines from BTF; file not found)'}` : 'no line info';
  return (
    <Pane id="source" width={width} height={height} focused={focused} info={info}>
      {src.lines.slice(start, start + h).map((r, i) => {
        const selected = focused && !dbg.follow && start + i === sel;
        return (
          <Text key={r.line} wrap="truncate" inverse={r.current || selected} underline={selected && r.current} dimColor={!r.code && !r.current} color={r.current ? c('green') : undefined}>
            {r.breakpoint ? (
              <Text color={c('red')} bold>
                ●
              </Text>
            ) : (
              ' '
            )}
            {fit(`${r.current ? '▶' : ' '}${String(r.line).padStart(4)} ${r.text}`, width - 1, r.current || selected)}
          </Text>
        );
      })}
    </Pane>
  );
}
