import { Parameter, type ParameterInit } from './parameter.js';
import { Generator } from './rng.js';

/**
 * Decides how parameters come to exist while a model is constructed. The default draws full fp32 values.
 * A plugin can install another (ZeRO-3's construction-time partitioning keeps only this rank's shard).
 */
export interface ParameterFactory {
  create(shape: number[], init: ParameterInit, seed: number): Parameter;
}

/** Draws the values of `init` for a parameter of `size` elements from a generator seeded by `seed`. */
export function drawInitValues(init: ParameterInit, size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  switch (init.kind) {
    case 'normal':
      return new Generator(seed).fillNormal(out, init.mean, init.std);
    case 'uniform':
      return new Generator(seed).fillUniform(out, init.low, init.high);
    case 'constant':
      return out.fill(init.value);
    case 'values':
      if (init.values.length !== size) throw new RangeError(`init values: expected ${size}, got ${init.values.length}`);
      return init.values.slice();
  }
}

const defaultFactory: ParameterFactory = {
  create(shape, init, seed) {
    const size = shape.reduce((a, b) => a * b, 1);
    return new Parameter(shape, init, drawInitValues(init, size, seed));
  },
};

let factory: ParameterFactory = defaultFactory;
let baseSeed = 1234;
let counter = 0;

/** Seeds model construction: the n-th parameter created gets seed (base, n), so inits are reproducible. */
export function manualSeed(seed: number): void {
  baseSeed = seed >>> 0;
  counter = 0;
}

/** Creates a parameter through the active factory (used by leaf layers). */
export function createParameter(shape: number[], init: ParameterInit): Parameter {
  const seed = (Math.imul(baseSeed ^ 0x5bd1e995, 31) + counter++) >>> 0;
  return factory.create(shape, init, seed);
}

/** Runs `build` with `f` as the parameter factory (e.g. ZeRO-3's partitioned construction). */
export function withParameterFactory<T>(f: ParameterFactory, build: () => T): T {
  const prev = factory;
  factory = f;
  try {
    return build();
  } finally {
    factory = prev;
  }
}
