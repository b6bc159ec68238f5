// Full-width text over the panes: the help, or what a command printed (info breakpoints, diff).

import { Box, Text } from 'ink';
import { COMMAND_HELP, KEY_HELP } from '../debugger/commands.js';
import type { Debugger } from '../debugger/debugger.js';
import { fit } from './Pane.js';

export function Overlay({ dbg, width, height }: { dbg: Debugger; width: number; height: number }) {
  const help = dbg.mode === 'help';
  const title = help ? 'Help (any key closes)' : `${dbg.output?.title ?? ''} (↑/↓ scroll, any other key closes)`;
  const lines = help ? [...KEY_HELP, '', ...COMMAND_HELP] : (dbg.output?.lines ?? []);
  const start = help ? 0 : (dbg.output?.scroll ?? 0);
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Text inverse wrap="truncate">
        {fit(title, width, true)}
      </Text>
      {lines.slice(start, start + height - 1).map((l, i) => (
        <Text key={i} wrap="truncate">
          {fit(l, width)}
        </Text>
      ))}
    </Box>
  );
}
