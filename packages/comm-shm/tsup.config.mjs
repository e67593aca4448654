import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.shared.mjs';

// @zeroflow/native stays external: its loader finds the addon next to itself at run time.
export default defineConfig(packageConfig(['src/index.ts'], { external: ['@zeroflow/native'] }));
