#!/usr/bin/env node
// Bundles `rewind conformance-plugin` into one file (packages/tui/dist/conformance-plugin.bundle.js),
// and the debugger's terminal UI (below).
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

// The debugger's terminal UI (ink, React and the panes) in one file, packages/tui/dist/ui/start.bundle.js:
// ink's modules load one by one in about half a second, the bundle in a third of that.
// `rewind replay` loads it when it exists (src/commands/replay.ts). React runs its production
// build; react-devtools-core, which ink imports only for its dev tools, becomes an empty module.
await build({
  entryPoints: [`${root}packages/tui/dist/ui/start.js`],
  outfile: `${root}packages/tui/dist/ui/start.bundle.js`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  define: { 'process.env.NODE_ENV': '"production"' },
  external: ['@rewind/*'],
  banner: { js: "import { createRequire as __rewindRequire } from 'node:module'; const require = __rewindRequire(import.meta.url);" },
  plugins: [
    {
      name: 'no-react-devtools',
      setup(b) {
        b.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: 'react-devtools-core', namespace: 'empty-module' }));
        b.onLoad({ filter: /.*/, namespace: 'empty-module' }, () => ({ contents: 'export default {};', loader: 'js' }));
      },
    },
  ],
  logLevel: 'warning',
});
