// The last line: the `:` command being typed, a running scan, the last message, or a hint.

import { Text } from 'ink';
import type { Debugger } from '../debugger/debugger.js';
import { fit } from './Pane.js';
import { useColors } from './theme.js';

export function BottomLine({ dbg, width }: { dbg: Debugger; width: number }) {
  const c = useColors();
  if (dbg.mode === 'command') {
    return (
      <Text wrap="truncate">
        {`:${dbg.commandLine}`}
        <Text inverse> </Text>
      </Text>
    );
  }
  if (dbg.busy) {
    return (
      <Text wrap="truncate" color={c('yellow')}>
        {`${dbg.busy.what} from step ${dbg.busy.from}… (Ctrl-C interrupts)`}
      </Text>
    );
  }
  if (dbg.message) {
    return (
      <Text wrap="truncate" color={dbg.message.error ? c('red') : undefined} bold={dbg.message.error}>
        {fit(dbg.message.text, width)}
      </Text>
    );
  }
  return (
    <Text wrap="truncate" dimColor>
      {fit('s/S step  n/N next  f/F finish  c/C continue  ]/[ run  w where-from  Tab panes  : command  ? help  q quit', width)}
    </Text>
  );
}
