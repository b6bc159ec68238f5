#!/usr/bin/env node
// Bundles `rewind conformance-plugin` into one file (packages/tui/dist/conformance-plugin.bundle.js).
// The bpf_conformance runner starts the plugin once per test; loading one module instead of a
// dozen saves a few milliseconds of every start.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  entryPoints: [`${root}packages/tui/dist/commands/conformance-plugin.js`],
  outfile: `${root}packages/tui/dist/conformance-plugin.bundle.js`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
