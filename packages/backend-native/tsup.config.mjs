import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.shared.mjs';

export default defineConfig(packageConfig(['src/index.ts']));
