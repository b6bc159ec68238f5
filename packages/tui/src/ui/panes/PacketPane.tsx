// The packet: its decoded headers, then a hex dump with the bytes the program changed marked.

import { Text } from 'ink';
import { paneRows } from '../../debugger/views.js';
import type { PaneId } from '../../debugger/views.js';
import { fit, Pane, windowStart } from '../Pane.js';
import { HexRowText } from './HexRow.js';
import type { PaneBodyProps } from './SourcePane.js';

export function PacketPane({ dbg, width, height, focused, tabs }: PaneBodyProps) {
  const state = dbg.current();
  const { rows, layers } = paneRows.packet(dbg, state);
  const h = height - 1;
  if (!state.packet) {
    return (
      <Pane id="packet" width={width} height={height} focused={focused} tabs={tabs}>
        <Text dimColor>this run has no packet</Text>
      </Pane>
    );
  }
  const shown = layers.filter((l) => l.name !== 'payload' && l.name !== 'trailer');
  const headerRows = Math.min(shown.length, Math.max(1, Math.floor(h / 3)));
  const dumpRows = h - headerRows;
  const per = dbg.bytesPerRow.packet;
  const selRow = Math.floor(dbg.selection.packet / per);
  const changedRow = rows.findIndex((r) => r.marked.some(Boolean));
  const start = windowStart(rows.length, dumpRows, focused ? selRow : Math.max(0, changedRow));
  return (
    <Pane id="packet" width={width} height={height} focused={focused} tabs={tabs} info={`${state.packet.bytes.length} bytes${state.packet.changed.length ? `, ${state.packet.changed.length} changed` : ''}`}>
      {shown.slice(0, headerRows).map((l, i) => (
        <Text key={`l${i}`} wrap="truncate" bold={i === 0}>
          {fit(l.summary, width)}
        </Text>
      ))}
      {rows.slice(start, start + dumpRows).map((r, i) => (
        <HexRowText key={r.offset} label={r.offset.toString(16).padStart(4, '0')} row={r} width={width} selected={focused && start + i === selRow ? dbg.selection.packet % per : undefined} />
      ))}
    </Pane>
  );
}
