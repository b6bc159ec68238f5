// The program's instructions in llvm-objdump syntax: the current one, jump targets as labels,
// breakpoints, and a dot on the instructions this run executed.

import { Text } from 'ink';
import { paneRows } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { useColors } from '../theme.js';
import type { PaneBodyProps } from './SourcePane.js';

export function DisasmPane({ dbg, width, height, focused }: PaneBodyProps) {
  const state = dbg.current();
  const c = useColors();
  const rows = paneRows.disasm(dbg, state);
  const cur = paneRows.cursorRow(dbg, state, 'disasm');
  const sel = dbg.follow ? cur : dbg.selection.disasm;
  const h = height - 1;
  const start = windowStart(rows.length, h, sel);
  return (
    <Pane id="disasm" width={width} height={height} focused={focused} info={`${state.program} pc ${state.pc}`}>
      {rows.slice(start, start + h).map((r, i) => {
        const selected = focused && !dbg.follow && start + i === sel;
        if (r.label) {
          return (
            <Text key={`l${start + i}`} wrap="truncate" bold color={c('cyan')} inverse={selected}>
              {fit(r.text, width)}
            </Text>
          );
        }
        return (
          <Text key={r.pc} wrap="truncate" inverse={r.current || selected} color={r.current ? c('green') : undefined} dimColor={!r.executed && !r.current}>
            {r.breakpoint ? (
              <Text color={c('red')} bold>
                ●
              </Text>
            ) : (
              ' '
            )}
            {fit(`${r.current ? '▶' : r.executed ? '•' : ' '}${String(r.pc).padStart(5)}: ${r.text}`, width - 1, r.current || selected)}
          </Text>
        );
      })}
    </Pane>
  );
}
