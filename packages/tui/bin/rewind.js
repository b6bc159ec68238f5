#!/usr/bin/env node
// V8 inlines only small functions by default; a program's bpf-to-bpf callees are compiled to
// JavaScript functions worth inlining into their callers.
import { setFlagsFromString } from 'node:v8';
setFlagsFromString('--max-inlined-bytecode-size=4000');
setFlagsFromString('--max-inlined-bytecode-size-cumulative=8000');
// The conformance plugin is started once per test by the bpf_conformance runner: it skips the
// argument parser and loads only the VM.
const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'conformance-plugin' && !rest.includes('--help') && !rest.includes('-h')) {
  // One bundled module when the build made it (scripts/bundle-plugin.mjs), else the modules.
  const { main } = await import('../dist/conformance-plugin.bundle.js').catch(() => import('../dist/commands/conformance-plugin.js'));
  process.exitCode = await main(rest);
} else {
  await import('../dist/cli.js');
}
