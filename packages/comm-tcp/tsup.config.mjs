import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.shared.mjs';

// worker.ts is its own entry: the socket thread is started from dist/worker.mjs (shims give the CJS build
// an import.meta.url to find it)
export default defineConfig(packageConfig(['src/index.ts', 'src/worker.ts'], { shims: true }));
