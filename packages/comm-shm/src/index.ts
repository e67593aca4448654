/**
 * `@zeroflow/comm-shm`: ZeroFlow's default collective backend on one host. Importing it registers the
 * `shm` backend with core, so `initDistributed()` can pick it.
 */

import type { CommBackend, ZeroFlowPlugin } from '@zeroflow/core';
import * as core from '@zeroflow/core';
import { shmBackend } from './backend.js';

export { createShmWorldGroup, SEGMENT_PREFIX, shmBackend, sweepStaleSegments } from './backend.js';
export { DTYPE_CODE, OP_CODE } from './codes.js';
export { type ShmBufferSizes, type ShmGroupSpec, ShmProcessGroup, shmBufferSizesFromEnv } from './group.js';
export { ShmWork } from './work.js';

/**
 * Registers the `shm` backend with core's backend registry (done on import; calling again is harmless).
 * Returns false when this core has no registry.
 */
export function registerShmBackend(): boolean {
  const register = (core as unknown as { registerCommBackend?: (b: CommBackend) => void }).registerCommBackend;
  if (typeof register !== 'function') return false;
  register(shmBackend);
  return true;
}

registerShmBackend();

/** The ZeroFlow plugin object: declares the `comm` capability this package provides. */
export const plugin: ZeroFlowPlugin = {
  name: '@zeroflow/comm-shm',
  version: '0.1.0',
  coreVersion: '^0.1.0',
  provides: ['comm'],
  setup() {
    registerShmBackend();
  },
};
