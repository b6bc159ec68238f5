// The debugger's screen: panes laid out for the terminal's size, the status line and the
// command line. Keys go to the Debugger; the screen redraws when its version moves, so keys
// that arrive faster than frames are all applied and drawn once.

import { useEffect, useState } from 'react';
import { Box, useApp, useInput, useStdout, type Key } from 'ink';
import type { Debugger } from '../debugger/debugger.js';
import type { PaneId } from '../debugger/views.js';
import { BottomLine } from './BottomLine.js';
import { Overlay } from './Overlay.js';
import { DisasmPane } from './panes/DisasmPane.js';
import { EventsPane } from './panes/EventsPane.js';
import { MapsPane } from './panes/MapsPane.js';
import { PacketPane } from './panes/PacketPane.js';
import { RegistersPane } from './panes/RegistersPane.js';
import { RunsPane } from './panes/RunsPane.js';
import { SourcePane, type PaneBodyProps } from './panes/SourcePane.js';
import { StackPane } from './panes/StackPane.js';
import { StatusLine } from './StatusLine.js';

/** Terminals this wide get three columns (registers and stack side by side with two slots). */
export const WIDE = 120;
const REGISTER_ROWS = 12;
/** A hex pane shows 16 bytes a row when they fit (label, 16 × 3, gap), else 8. */
const perRow = (width: number): number => (width >= 58 ? 16 : 8);

const BODIES: Record<PaneId, (p: PaneBodyProps) => React.JSX.Element> = {
  source: SourcePane,
  disasm: DisasmPane,
  registers: RegistersPane,
  stack: StackPane,
  packet: PacketPane,
  maps: MapsPane,
  events: EventsPane,
  runs: RunsPane,
};

/** Names the Debugger understands for what ink parsed. */
export function keyNames(input: string, key: Key): string[] {
  if (key.ctrl && input === 'c') return ['ctrl-c'];
  if (key.upArrow) return ['up'];
  if (key.downArrow) return ['down'];
  if (key.leftArrow) return ['left'];
  if (key.rightArrow) return ['right'];
  if (key.pageUp) return ['pageup'];
  if (key.pageDown) return ['pagedown'];
  if (key.home) return ['home'];
  if (key.end) return ['end'];
  if (key.return) return ['return'];
  if (key.escape) return ['escape'];
  if (key.tab) return [key.shift ? 'backtab' : 'tab'];
  if (key.backspace || key.delete) return ['backspace'];
  if (key.ctrl || key.meta) return [];
  // A pasted or fast-typed chunk comes as one input: split it, naming the control characters in it.
  return [...input].map((ch) => CONTROL_CHARS[ch] ?? ch);
}

const CONTROL_CHARS: Record<string, string> = { '\r': 'return', '\n': 'return', '\t': 'tab', '\x7f': 'backspace', '\b': 'backspace', '\x1b': 'escape', '\x03': 'ctrl-c' };

export interface AppProps {
  dbg: Debugger;
  /** Terminal size; from stdout (and its resize events) when absent. */
  columns?: number;
  rows?: number;
}

export function App({ dbg, columns, rows }: AppProps) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [, setVersion] = useState(dbg.version);
  const [size, setSize] = useState({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  useEffect(() => dbg.subscribe(() => setVersion(dbg.version)), [dbg]);
  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  useInput((input, key) => {
    for (const k of keyNames(input, key)) dbg.key(k);
  });
  useEffect(() => {
    if (dbg.quit) exit();
    else dbg.prefetch();
  });
  const cols = columns ?? size.columns;
  const rowsAll = rows ?? size.rows;
  dbg.columns = cols;
  dbg.rows = rowsAll;
  // One row short of the terminal: a frame as tall as the terminal makes ink clear the screen every frame.
  const height = Math.max(4, rowsAll - 1);
  const body = height - 2;
  // Before any pane reads the state: a step the trace cannot rebuild sends the cursor back.
  dbg.drawable();
  const pane = (id: PaneId, width: number, h: number, tabs?: readonly PaneId[]) => {
    const Body = BODIES[id];
    return <Body key={id} dbg={dbg} step={dbg.step} width={width} height={h} focused={dbg.focus === id} tabs={tabs} />;
  };
  let content: React.JSX.Element;
  if (dbg.mode === 'help' || dbg.mode === 'output') {
    content = <Overlay dbg={dbg} width={cols} height={body} />;
  } else if (cols >= WIDE) {
    const leftW = Math.floor(cols * 0.42);
    const midW = Math.floor(cols * 0.27);
    const rightW = cols - leftW - midW - 2;
    const src = Math.ceil(body / 2);
    const regs = Math.min(REGISTER_ROWS, body - 3);
    const tabs: PaneId[] = ['packet', 'maps', 'events', 'runs'];
    const slot = tabs.includes(dbg.slot) ? dbg.slot : 'packet';
    const two = body >= 20;
    const slot2 = !two ? undefined : dbg.slot2 !== slot && tabs.includes(dbg.slot2) ? dbg.slot2 : tabs.find((t) => t !== slot)!;
    const top = two ? Math.ceil(body / 2) : body;
    dbg.bytesPerRow.stack = perRow(midW);
    dbg.bytesPerRow.packet = perRow(rightW);
    content = (
      <Box flexDirection="row" height={body}>
        <Box flexDirection="column" width={leftW}>
          {pane('source', leftW, src)}
          {pane('disasm', leftW, body - src)}
        </Box>
        <Box width={1} />
        <Box flexDirection="column" width={midW}>
          {pane('registers', midW, regs)}
          {pane('stack', midW, body - regs)}
        </Box>
        <Box width={1} />
        <Box flexDirection="column" width={rightW}>
          {pane(slot, rightW, top, tabs.filter((t) => t !== slot2))}
          {slot2 ? pane(slot2, rightW, body - top, tabs.filter((t) => t !== slot)) : null}
        </Box>
      </Box>
    );
  } else {
    const leftW = Math.floor(cols * 0.55);
    const rightW = cols - leftW - 1;
    const src = Math.ceil(body / 2);
    const regs = Math.min(REGISTER_ROWS, Math.max(2, body - 4));
    const tabs: PaneId[] = ['stack', 'packet', 'maps', 'events', 'runs'];
    const slot = tabs.includes(dbg.slot) ? dbg.slot : 'stack';
    dbg.bytesPerRow.stack = dbg.bytesPerRow.packet = perRow(rightW);
    content = (
      <Box flexDirection="row" height={body}>
        <Box flexDirection="column" width={leftW}>
          {pane('source', leftW, src)}
          {pane('disasm', leftW, body - src)}
        </Box>
        <Box width={1} />
        <Box flexDirection="column" width={rightW}>
          {pane('registers', rightW, regs)}
          {pane(slot, rightW, body - regs, tabs)}
        </Box>
      </Box>
    );
  }
  return (
    <Box flexDirection="column" width={cols} height={height}>
      {content}
      <StatusLine dbg={dbg} step={dbg.step} width={cols} />
      <BottomLine dbg={dbg} width={cols} />
    </Box>
  );
}
