import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run from source: each workspace package @rlhf/<dir> resolves to packages/<dir>/src/index.ts.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const alias = Object.fromEntries(
  readdirSync(packagesDir)
    .filter((dir) => existsSync(`${packagesDir}${dir}/src/index.ts`))
    .map((dir) => [`@rlhf/${dir}`, `${packagesDir}${dir}/src/index.ts`]),
);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
