// r0–r10: what each points to (or its decimal value) and its hex; the last step's writes in bold.

import { Text } from 'ink';
import { paneRows } from '../../debugger/views.js';
import { fit, Pane } from '../Pane.js';
import { useColors } from '../theme.js';
import type { PaneBodyProps } from './SourcePane.js';

export function RegistersPane({ dbg, width, height, focused }: PaneBodyProps) {
  const state = dbg.current();
  const c = useColors();
  const rows = paneRows.registers(state);
  const chain = dbg.chain?.target;
  return (
    <Pane id="registers" width={width} height={height} focused={focused} info={state.changed.length ? `wrote ${state.changed.map((r) => `r${r}`).join(' ')}` : undefined}>
      {rows.slice(0, height - 1).map((r) => {
        const selected = focused && dbg.selection.registers === r.reg;
        const traced = chain?.kind === 'reg' && chain.reg === r.reg;
        const what = r.points === 'scalar' ? r.dec : r.points;
        return (
          <Text key={r.reg} wrap="truncate" inverse={selected} bold={r.changed} color={r.changed ? c('yellow') : undefined} underline={traced}>
            {fit(`${`r${r.reg}`.padEnd(4)}${what.padEnd(Math.max(8, Math.min(18, width - 5 - r.hex.length)))} ${r.hex}`, width, selected)}
          </Text>
        );
      })}
    </Pane>
  );
}
