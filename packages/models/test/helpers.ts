import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backwardWithHooks, type Generator, type Parameter, type tf } from '@zeroflow/core';

/** The monorepo root: the nearest folder above this file holding pnpm-workspace.yaml. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'pnpm-workspace.yaml'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root (no pnpm-workspace.yaml above the tests)');
    dir = up;
  }
  return dir;
}

/** Relative L2 error |a - b| / |b|. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** Loss and every parameter gradient via core's hooks, tied uses summed, keyed by parameter name. */
export function hookedGradients(
  lossFn: () => tf.Scalar,
  rng?: Generator,
): { loss: number; grads: Map<string, Float32Array> } {
  const grads = new Map<string, Float32Array>();
  const onGrad = (p: Parameter, g: tf.Tensor) => {
    const v = g.dataSync() as Float32Array;
    const acc = grads.get(p.name);
    if (acc) for (let i = 0; i < v.length; i++) acc[i] += v[i];
    else grads.set(p.name, Float32Array.from(v));
  };
  const { loss } = backwardWithHooks(lossFn, onGrad, rng ? { rng } : {});
  return { loss, grads };
}
