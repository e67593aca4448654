/**
 * `@zeroflow/comm-shm`: ZeroFlow's default collective backend on one host. Importing it registers the
 * `shm` backend with core, so `initDistributed()` can pick it.
 */

import { createCommPlugin, registerCommBackend, type ZeroFlowPlugin } from '@zeroflow/core';
import { shmBackend } from './backend.js';

export { createShmWorldGroup, SEGMENT_PREFIX, shmBackend, sweepStaleSegments } from './backend.js';
export { DTYPE_CODE, OP_CODE } from './codes.js';
export { type ShmBufferSizes, type ShmGroupSpec, ShmProcessGroup, shmBufferSizesFromEnv } from './group.js';
export { ShmWork } from './work.js';

registerCommBackend(shmBackend);

/**
 * The ZeroFlow plugin: joins the job with the shm backend (unless another plugin already provides `comm`)
 * and offers the world group as the `comm` service.
 */
export const plugin: ZeroFlowPlugin = createCommPlugin({
  name: '@zeroflow/comm-shm',
  version: '0.1.0',
  backend: 'shm',
});

export default plugin;
