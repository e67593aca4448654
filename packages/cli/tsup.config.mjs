import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.shared.mjs';

// bin.ts keeps its `#!/usr/bin/env node` line; package.json's `bin` points at the CJS build.
export default defineConfig(packageConfig(['src/index.ts', 'src/bin.ts']));
