import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url));
// Tests run against the TypeScript sources, not dist/.
const alias = {
  '@rewind/vm/core': fileURLToPath(new URL('./packages/vm/src/core.ts', import.meta.url)),
  '@rewind/vm/kernel': fileURLToPath(new URL('./packages/vm/src/kernel/index.ts', import.meta.url)),
  '@rewind/vm': src('vm'),
  '@rewind/recorder/vitest/reporter': fileURLToPath(new URL('./packages/recorder/src/vitest/reporter.ts', import.meta.url)),
  '@rewind/recorder/vitest': fileURLToPath(new URL('./packages/recorder/src/vitest/index.ts', import.meta.url)),
  '@rewind/recorder/testing': fileURLToPath(new URL('./packages/recorder/src/vitest/testing.ts', import.meta.url)),
  '@rewind/recorder': src('recorder'),
};

export default defineConfig({
  test: {
    // The traces failing tests kept, with the command that opens each, then the totals.
    reporters: ['default', './packages/recorder/src/vitest/reporter.ts', './scripts/summary-reporter.ts'],
    projects: ['vm', 'recorder', 'tui'].map((name) => ({
      resolve: { alias },
      test: {
        name,
        root: `packages/${name}`,
        include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'test/**/*.test.ts', 'test/**/*.test.tsx'],
        testTimeout: 60_000,
      },
    })),
  },
});
