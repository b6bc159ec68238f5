import { TraceError } from '@rewind/recorder';
import { RewindError } from '@rewind/vm';

/** Prints an error as one line and returns the exit code; a bug in Rewind keeps its stack. */
export function reportError(e: unknown): number {
  if (e instanceof RangeError && /^step \d+ is not in the trace/.test(e.message)) {
    process.stderr.write(`rewind: ${e.message}\n`);
    return 2;
  }
  if (e instanceof RewindError || e instanceof TraceError || (e instanceof Error && (e as NodeJS.ErrnoException).code?.startsWith('E'))) {
    process.stderr.write(`rewind: ${e.message}\n`);
    return e.name === 'UsageError' ? 2 : 1;
  }
  process.stderr.write(`rewind: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 70;
}
