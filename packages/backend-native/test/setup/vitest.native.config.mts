// Runs another package's vitest suite with the native backend active, e.g. from packages/models:
//   npx vitest run test/parity.test.ts --root . --config ../backend-native/test/setup/vitest.native.config.mts
import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../../../vitest.shared';

export default mergeConfig(
  shared,
  defineConfig({ test: { setupFiles: [fileURLToPath(new URL('./use-native-backend.ts', import.meta.url))] } }),
);
