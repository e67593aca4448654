/**
 * backwardWithHooks frees each backward node's saved activations and incoming gradients right after the node
 * ran (nn/early-release.ts): gradients stay exactly those of plain tf.grads, nothing leaks, and the tensor
 * bytes alive late in backward are a fraction of those alive when it starts (tfjs alone keeps everything).
 */
import { describe, expect, it } from 'vitest';
import { backwardWithHooks, checkpoint, Linear, Module, manualSeed, type Parameter, tf } from '../src/index.js';

class Chain extends Module {
  readonly layers: Linear[] = [];
  constructor(
    readonly width: number,
    depth: number,
    readonly checkpointed = false,
  ) {
    super();
    for (let i = 0; i < depth; i++) this.layers.push(this.registerModule(`l${i}`, new Linear(width, width)));
  }

  loss(x: tf.Tensor): tf.Scalar {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layers) {
        const step = (t: tf.Tensor) => {
          const y = tf.tanh(l.forward(t));
          // an identity-gradient op and a reuse of the same tensor: the thunks of Add return dy-shaped
          // tensors for both inputs, which must never be freed while tfjs still holds them
          return tf.add(tf.reshape(y, y.shape), tf.mul(y, 0.5));
        };
        h = this.checkpointed ? checkpoint(step, [h]) : step(h);
      }
      return tf.mean(tf.square(h)) as tf.Scalar;
    });
  }
}

/** Weight gradients through the hooks (summed per parameter) and the tensor bytes seen at each delivery. */
function hookedGrads(net: Chain, x: tf.Tensor): { grads: Map<Parameter, Float32Array>; bytes: number[] } {
  const grads = new Map<Parameter, Float32Array>();
  const bytes: number[] = [];
  backwardWithHooks(
    () => net.loss(x),
    (p, g) => {
      bytes.push(tf.memory().numBytes);
      const prev = grads.get(p);
      const v = g.dataSync() as Float32Array;
      grads.set(p, prev ? prev.map((a, i) => a + v[i]) : Float32Array.from(v));
    },
  );
  return { grads, bytes };
}

/** The same gradients from plain tf.grads over the parameters' tensors (no hooks, tfjs's own bookkeeping). */
function plainGrads(net: Chain, x: tf.Tensor): Map<Parameter, Float32Array> {
  const params = net.parameters();
  const out = new Map<Parameter, Float32Array>();
  const saved = params.map((p) => p.tensor!);
  const gs = tf.grads((...ws: tf.Tensor[]) => {
    params.forEach((p, i) => {
      (p as unknown as { tensor: tf.Tensor }).tensor = ws[i];
    });
    return net.loss(x);
  })(saved);
  params.forEach((p, i) => {
    (p as unknown as { tensor: tf.Tensor }).tensor = saved[i];
    out.set(p, gs[i].dataSync() as Float32Array);
  });
  tf.dispose(gs);
  return out;
}

describe('backward frees what each node used as soon as it ran', () => {
  for (const checkpointed of [false, true]) {
    it(`gives tf.grads' gradients bit for bit and leaks nothing${checkpointed ? ' (checkpointed layers)' : ''}`, () => {
      manualSeed(3);
      const net = new Chain(24, 5, checkpointed);
      const x = tf.randomNormal([7, 24], 0, 1, 'float32', 5);
      const before = tf.memory().numTensors;
      const { grads } = hookedGrads(net, x);
      expect(tf.memory().numTensors).toBe(before);
      const ref = plainGrads(net, x);
      for (const p of net.parameters()) expect(Array.from(grads.get(p)!)).toEqual(Array.from(ref.get(p)!));
    });
  }

  it('holds a fraction of the forward activations by the end of backward', () => {
    manualSeed(4);
    const net = new Chain(256, 8);
    const x = tf.randomNormal([512, 256], 0, 1, 'float32', 6);
    const { bytes } = hookedGrads(net, x);
    // first delivery: the last layer's weight, with every activation of the chain still saved; last one: the
    // first layer's, when a tfjs-only backward would hold more than at the first (every intermediate gradient
    // too). What is left is the parameters, the input and the first layer's own activations.
    expect(bytes.length).toBe(16);
    expect(bytes[bytes.length - 1]).toBeLessThan(bytes[0] * 0.35);
    for (let i = 2; i < bytes.length; i += 2) expect(bytes[i]).toBeLessThan(bytes[i - 2]);
  });
});
