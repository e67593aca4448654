/**
 * Deterministic, resumable, data-parallel batch sampling over one token stream.
 *
 * The token stream is cut into windows of blockSize + 1 tokens (inputs and next-token targets). Each epoch
 * visits every window once, in an order shuffled from the seed, with a per-epoch shift of the window grid so
 * that windows do not start at the same offsets every epoch. Global sample s is window s mod W of epoch
 * floor(s / W) (W windows an epoch), so the whole schedule is a pure function of (seed, s): no hidden state.
 *
 * A global batch g holds S = microBatchSize * gradientAccumulationSteps * worldSize samples, s = g * S + j.
 * Rank r at micro-step m takes j = (m * worldSize + r) * microBatchSize + b for b < microBatchSize. So the ranks
 * read disjoint parts of the same global batch, and the set of samples in a global batch depends only on S:
 * a run resumed with another worldSize and gradientAccumulationSteps of the same product sees the same data.
 */

/** One micro-batch: row-major [microBatchSize, blockSize] token ids and their next-token targets. */
export interface MicroBatch {
  inputIds: Int32Array;
  targets: Int32Array;
}

/** A micro-batch with its place in the schedule. */
export interface PlacedMicroBatch extends MicroBatch {
  globalBatch: number;
  microStep: number;
}

/** Options of a `BatchSampler`. */
export interface BatchSamplerOptions {
  /** Token stream to sample from (e.g. the `train` split of `buildDataset`). */
  tokens: Int32Array;
  /** Tokens per sample (T). */
  blockSize: number;
  /** Samples per micro-batch on one rank (B, DeepSpeed's `train_micro_batch_size_per_gpu`). */
  microBatchSize: number;
  /** Micro-steps per global batch (DeepSpeed's `gradient_accumulation_steps`); default 1. */
  gradientAccumulationSteps?: number;
  /** This process's data-parallel rank; default 0. */
  rank?: number;
  /** Data-parallel world size; default 1. */
  worldSize?: number;
  /** Seed of the shuffle; default 0. */
  seed?: number;
}

/** Resumable position of a `BatchSampler` (JSON-safe; store it in a checkpoint). */
export interface SamplerState {
  /** Index of the global batch the next micro-batch belongs to. */
  globalBatch: number;
  /** Micro-step within that global batch of the next micro-batch. */
  microStep: number;
  /** Fingerprint of the schedule: restoring into a sampler with another one is an error. */
  seed: number;
  blockSize: number;
  numTokens: number;
  samplesPerGlobalBatch: number;
}

/** splitmix32 finalizer: a good 32-bit mix for deriving independent seeds. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** mulberry32: small, fast, deterministic PRNG of uint32 values. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform integer in [0, n) without modulo bias. */
function below(next: () => number, n: number): number {
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const x = next();
    if (x < limit) return x % n;
  }
}

function checkInt(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min)
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
}

/** Samples micro-batches of one data-parallel rank; see the module comment for the schedule. */
export class BatchSampler {
  readonly blockSize: number;
  readonly microBatchSize: number;
  readonly gradientAccumulationSteps: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly seed: number;
  /** Samples in one global batch, over all ranks and micro-steps. */
  readonly samplesPerGlobalBatch: number;
  /** Windows visited per epoch. */
  readonly windowsPerEpoch: number;
  private readonly tokens: Int32Array;
  private globalBatch = 0;
  private microStep = 0;
  // A global batch may straddle two epochs: keep the last two permutations.
  private readonly epochCache = new Map<number, { order: Int32Array; shift: number }>();

  constructor(options: BatchSamplerOptions) {
    const { tokens, blockSize, microBatchSize } = options;
    this.gradientAccumulationSteps = options.gradientAccumulationSteps ?? 1;
    this.rank = options.rank ?? 0;
    this.worldSize = options.worldSize ?? 1;
    this.seed = options.seed ?? 0;
    checkInt('blockSize', blockSize, 1);
    checkInt('microBatchSize', microBatchSize, 1);
    checkInt('gradientAccumulationSteps', this.gradientAccumulationSteps, 1);
    checkInt('worldSize', this.worldSize, 1);
    checkInt('rank', this.rank, 0);
    checkInt('seed', this.seed, 0);
    if (this.rank >= this.worldSize) throw new RangeError(`rank ${this.rank} must be < worldSize ${this.worldSize}`);
    // A shifted grid needs one spare block: window k starts at k * T + shift with shift < T, and reads T + 1 tokens.
    const windows = Math.floor(tokens.length / blockSize) - 1;
    if (windows < 1) {
      throw new RangeError(
        `${tokens.length} tokens are too few for blockSize ${blockSize}: need at least ${2 * blockSize}; use a smaller blockSize or more data`,
      );
    }
    this.tokens = tokens;
    this.blockSize = blockSize;
    this.microBatchSize = microBatchSize;
    this.windowsPerEpoch = windows;
    this.samplesPerGlobalBatch = microBatchSize * this.gradientAccumulationSteps * this.worldSize;
  }

  /** Global sample indices (s) that rank `rank` reads at (globalBatch, microStep). */
  sampleIndices(globalBatch: number, microStep: number, rank = this.rank): number[] {
    checkInt('globalBatch', globalBatch, 0);
    if (!(Number.isInteger(microStep) && microStep >= 0 && microStep < this.gradientAccumulationSteps)) {
      throw new RangeError(`microStep must be an integer in [0, ${this.gradientAccumulationSteps}), got ${microStep}`);
    }
    const first = globalBatch * this.samplesPerGlobalBatch + (microStep * this.worldSize + rank) * this.microBatchSize;
    return Array.from({ length: this.microBatchSize }, (_, b) => first + b);
  }

  /** Token offset of global sample `s`: inputs are tokens[o, o + T), targets tokens[o + 1, o + T + 1). */
  offsetOf(sample: number): number {
    const epoch = Math.floor(sample / this.windowsPerEpoch);
    const { order, shift } = this.epoch(epoch);
    return order[sample - epoch * this.windowsPerEpoch] * this.blockSize + shift;
  }

  /** The micro-batch of this rank at (globalBatch, microStep), without moving the sampler. */
  batchAt(globalBatch: number, microStep: number): MicroBatch {
    const T = this.blockSize;
    const inputIds = new Int32Array(this.microBatchSize * T);
    const targets = new Int32Array(this.microBatchSize * T);
    this.sampleIndices(globalBatch, microStep).forEach((sample, b) => {
      const offset = this.offsetOf(sample);
      inputIds.set(this.tokens.subarray(offset, offset + T), b * T);
      targets.set(this.tokens.subarray(offset + 1, offset + T + 1), b * T);
    });
    return { inputIds, targets };
  }

  /** The next micro-batch of this rank; advances the position. */
  next(): PlacedMicroBatch {
    const globalBatch = this.globalBatch;
    const microStep = this.microStep;
    const batch = this.batchAt(globalBatch, microStep);
    if (++this.microStep === this.gradientAccumulationSteps) {
      this.microStep = 0;
      this.globalBatch++;
    }
    return { ...batch, globalBatch, microStep };
  }

  /** Epochs completed so far, fractional (for logs). */
  get epochsDone(): number {
    const samples =
      this.globalBatch * this.samplesPerGlobalBatch + this.microStep * this.worldSize * this.microBatchSize;
    return samples / this.windowsPerEpoch;
  }

  /** Position to store in a checkpoint. */
  state(): SamplerState {
    return {
      globalBatch: this.globalBatch,
      microStep: this.microStep,
      seed: this.seed,
      blockSize: this.blockSize,
      numTokens: this.tokens.length,
      samplesPerGlobalBatch: this.samplesPerGlobalBatch,
    };
  }

  /**
   * Continues from a stored position. The schedule must be the same (seed, blockSize, data, global batch
   * size); worldSize and gradientAccumulationSteps may differ if their product does and the state is at a
   * global-batch boundary (microStep 0), as checkpoints are.
   */
  restore(state: SamplerState): void {
    const here = this.state();
    const mismatches: string[] = [];
    for (const key of ['seed', 'blockSize', 'numTokens', 'samplesPerGlobalBatch'] as const) {
      if (state[key] !== here[key]) mismatches.push(`${key}: stored ${state[key]}, here ${here[key]}`);
    }
    if (mismatches.length > 0) {
      throw new Error(`sampler state belongs to another data schedule (${mismatches.join('; ')})`);
    }
    checkInt('globalBatch', state.globalBatch, 0);
    if (
      !(Number.isInteger(state.microStep) && state.microStep >= 0 && state.microStep < this.gradientAccumulationSteps)
    ) {
      throw new RangeError(
        `stored microStep ${state.microStep} does not fit gradientAccumulationSteps ${this.gradientAccumulationSteps}: resume from a global-batch boundary`,
      );
    }
    this.globalBatch = state.globalBatch;
    this.microStep = state.microStep;
  }

  private epoch(epoch: number): { order: Int32Array; shift: number } {
    let entry = this.epochCache.get(epoch);
    if (entry === undefined) {
      const next = mulberry32(mix32(mix32(this.seed) ^ epoch));
      const order = new Int32Array(this.windowsPerEpoch);
      for (let i = 0; i < order.length; i++) order[i] = i;
      for (let i = order.length - 1; i > 0; i--) {
        const k = below(next, i + 1);
        const t = order[i];
        order[i] = order[k];
        order[k] = t;
      }
      entry = { order, shift: below(next, this.blockSize) };
      if (this.epochCache.size >= 2) this.epochCache.delete(this.epochCache.keys().next().value as number);
      this.epochCache.set(epoch, entry);
    }
    return entry;
  }
}

/** Options of `evalBatches`. */
export interface EvalBatchOptions {
  blockSize: number;
  /** Samples per batch on one rank. */
  batchSize: number;
  rank?: number;
  worldSize?: number;
  /** Stop after this many batches per rank (default: all full batches). */
  maxBatches?: number;
}

/**
 * Fixed evaluation batches: consecutive non-overlapping windows from the start of `tokens`, batch k of rank r
 * taking windows (k * worldSize + r) * batchSize + b. Only full global batches, so every rank gets the same
 * number of batches (they meet in the same collectives).
 */
export function* evalBatches(tokens: Int32Array, options: EvalBatchOptions): Generator<MicroBatch> {
  const { blockSize: T, batchSize: B } = options;
  const rank = options.rank ?? 0;
  const worldSize = options.worldSize ?? 1;
  checkInt('blockSize', T, 1);
  checkInt('batchSize', B, 1);
  const windows = Math.floor((tokens.length - 1) / T);
  let batches = Math.floor(windows / (B * worldSize));
  if (options.maxBatches !== undefined) batches = Math.min(batches, options.maxBatches);
  for (let k = 0; k < batches; k++) {
    const inputIds = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const offset = ((k * worldSize + rank) * B + b) * T;
      inputIds.set(tokens.subarray(offset, offset + T), b * T);
      targets.set(tokens.subarray(offset + 1, offset + T + 1), b * T);
    }
    yield { inputIds, targets };
  }
}
