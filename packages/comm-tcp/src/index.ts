/**
 * @zeroflow/comm-tcp: the collective backend with no native dependencies. Importing this module registers
 * the `tcp` backend with core's registry; `plugin` makes it the engine's `comm` service.
 */
import { createCommPlugin, registerCommBackend, type ZeroFlowPlugin } from '@zeroflow/core';
import { tcpBackend } from './backend.js';

registerCommBackend(tcpBackend);

export { DEFAULT_SEGMENT_BYTES, tcpBackend } from './backend.js';
export { groupId, TcpProcessGroup } from './group.js';

/**
 * A typed array over a SharedArrayBuffer: collectives on it skip the copy into and out of staging memory.
 * Use it for large, long-lived buffers (flat gradient buckets).
 */
export function sharedCommBuffer<T extends Float32Array | Int32Array | Uint16Array>(
  Ctor: new (buffer: SharedArrayBuffer, byteOffset: number, length: number) => T,
  length: number,
): T {
  const bytesPer = (Ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  return new Ctor(new SharedArrayBuffer(length * bytesPer), 0, length);
}

/**
 * The ZeroFlow plugin: joins the job with the tcp backend (unless another plugin already provides `comm`)
 * and offers the world group as the `comm` service.
 */
export const plugin: ZeroFlowPlugin = createCommPlugin({
  name: '@zeroflow/comm-tcp',
  version: '0.1.0',
  backend: 'tcp',
});

export default plugin;
