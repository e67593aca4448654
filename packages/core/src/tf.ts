/**
 * The one place ZeroFlow loads TensorFlow.js.
 *
 * `@tensorflow/tfjs-core` alone registers no gradients and no chained ops, and its ESM build cannot be loaded
 * by plain Node (DESIGN.md section 4). The `@tensorflow/tfjs` CJS bundle registers both (into tfjs-core's
 * global registries) and the `cpu` backend. Everything in ZeroFlow uses the `tf` exported here.
 */
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

/** Silences the cpu backend's one-time "install tfjs-node" banner: ZeroFlow brings its own native kernels. */
function quietCpuBanner(): void {
  const backend = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (backend && 'firstUse' in backend) backend.firstUse = false;
}

if (tf.getBackend() === undefined || tf.getBackend() === 'webgl') tf.setBackend('cpu');
quietCpuBanner();

export { tf };
