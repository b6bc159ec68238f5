#!/usr/bin/env node
// The conformance plugin is started once per test by the bpf_conformance runner: it skips the
// argument parser and loads only the VM.
const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'conformance-plugin' && !rest.includes('--help') && !rest.includes('-h')) {
  const { main } = await import('../dist/commands/conformance-plugin.js');
  process.exitCode = await main(rest);
} else {
  await import('../dist/cli.js');
}
