// A pane: a title row (inverse when focused) and `height - 1` rows of content, each cut to the width.

import type { ReactNode } from 'react';
import { Box, Text } from 'ink';
import { PANES, PANE_TITLES, type PaneId } from '../debugger/views.js';

export interface PaneProps {
  id: PaneId;
  width: number;
  height: number;
  focused: boolean;
  /** Shown after the title, e.g. the file name. */
  info?: string;
  /** Panes sharing the slot, listed as tabs. */
  tabs?: readonly PaneId[];
  children?: ReactNode;
}

export function Pane({ id, width, height, focused, info, tabs, children }: PaneProps) {
  const number = PANES.indexOf(id) + 1;
  const title = tabs
    ? tabs.map((t) => (t === id ? `[${PANES.indexOf(t) + 1} ${PANE_TITLES[t]}]` : ` ${PANES.indexOf(t) + 1} ${PANE_TITLES[t]} `)).join('')
    : `${number} ${PANE_TITLES[id]}`;
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Text inverse={focused} bold={!focused} wrap="truncate">
        {fit(`${title}${info ? `  ${info}` : ''}`, width, true)}
      </Text>
      {children}
    </Box>
  );
}

/**
 * Cuts a row to the pane's width (an ellipsis marks the cut), padding it when `pad` (highlighted
 * rows span the pane). ink can truncate by itself, but measuring and slicing long strings with
 * escape sequences in them is most of a frame's time; plain slicing here is not.
 */
export function fit(text: string, width: number, pad = false): string {
  if (text.length > width) return width > 1 ? text.slice(0, width - 1) + '…' : text.slice(0, width);
  return pad ? text.padEnd(width) : text;
}

/** The first row to show so that `row` is visible (kept near the middle) in `height` rows of `total`. */
export function windowStart(total: number, height: number, row: number): number {
  if (total <= height) return 0;
  return Math.max(0, Math.min(total - height, row - Math.floor(height / 2)));
}
