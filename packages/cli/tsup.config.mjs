import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.shared.mjs';

// bin.ts keeps its `#!/usr/bin/env node` line; package.json's `bin` points at the CJS build.
// rank-preload is loaded into every rank with `node --require dist/rank-preload.cjs` (the launcher's watchdog).
// shims: the launcher finds dist/ through import.meta.url, which the CJS build needs shimmed.
export default defineConfig(
  packageConfig(
    { index: 'src/index.ts', bin: 'src/bin.ts', 'rank-preload': 'src/launcher/rank-preload.ts' },
    { shims: true },
  ),
);
