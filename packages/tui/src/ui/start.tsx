// Runs the debugger full screen: the alternate screen for its lifetime, restored on every way
// out (q, Ctrl-C, SIGTERM, SIGHUP, an uncaught exception).

import { render } from 'ink';
import type { Debugger } from '../debugger/debugger.js';
import { App } from './App.js';
import { ThemeContext, themeFromEnv } from './theme.js';

const ENTER_ALT = '\x1b[?1049h\x1b[H';
const LEAVE_ALT = '\x1b[?25h\x1b[?1049l';

export async function startTui(dbg: Debugger): Promise<void> {
  const stdout = process.stdout;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.write(LEAVE_ALT);
  };
  stdout.write(ENTER_ALT);
  const instance = render(
    <ThemeContext.Provider value={themeFromEnv()}>
      <App dbg={dbg} />
    </ThemeContext.Provider>,
    { exitOnCtrlC: false, patchConsole: true, maxFps: 60 },
  );
  const bail = (code: number) => {
    try {
      instance.unmount();
    } catch {
      // already unmounted
    }
    restore();
    process.exit(code);
  };
  const onTerm = () => bail(143);
  const onInt = () => bail(130);
  const onHup = () => bail(129);
  const onCrash = (e: unknown) => {
    try {
      instance.unmount();
    } catch {
      // the crash may have come from ink itself
    }
    restore();
    process.stderr.write(`rewind: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(70);
  };
  const handlers: [string, (...args: any[]) => void][] = [
    ['SIGTERM', onTerm],
    ['SIGINT', onInt],
    ['SIGHUP', onHup],
    ['uncaughtException', onCrash],
    ['unhandledRejection', onCrash],
    ['exit', restore],
  ];
  for (const [event, fn] of handlers) process.on(event, fn);
  try {
    await instance.waitUntilExit();
  } finally {
    restore();
    for (const [event, fn] of handlers) process.off(event, fn);
  }
}
