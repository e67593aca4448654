// A vitest setup file for other packages' suites: runs them on the native backend, e.g.
//   cd packages/models && npx vitest run test/parity.test.ts --setupFiles ../backend-native/test/setup/use-native-backend.ts
import { tf } from '@zeroflow/core';
import { NATIVE_BACKEND_NAME, nativeBackendStatus } from '../../src/index.js';

const status = nativeBackendStatus();
if (!status?.active || tf.getBackend() !== NATIVE_BACKEND_NAME) {
  throw new Error(`the native backend is not active: ${status?.reason ?? `backend is ${tf.getBackend()}`}`);
}
console.log(`[use-native-backend] ${NATIVE_BACKEND_NAME} active: ${JSON.stringify(status.info)}`);
