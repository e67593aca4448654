/**
 * Which samples each data-parallel rank reads, with the semantics of torch.utils.data.DistributedSampler:
 * one permutation of the whole dataset per (seed + epoch), made evenly divisible by the number of replicas
 * (padded by repeating from its start, or with its tail dropped), then dealt round-robin: rank r takes
 * positions r, r + N, r + 2N, ... The permutation comes from ZeroFlow's own seeded generator, so it is
 * identical on every rank and every run, but not the same permutation as torch.randperm.
 */
import { ZeroFlowError } from '../errors.js';
import { Generator } from '../nn/rng.js';

/** Anything that yields sample indices for one epoch; the data loader accepts any of these. */
export interface Sampler {
  /** Number of indices one epoch yields. */
  readonly length: number;
  /** The indices of the current epoch, in order. */
  indices(): ArrayLike<number>;
  /** Selects the epoch whose order `indices()` returns (reshuffles where the sampler shuffles). */
  setEpoch?(epoch: number): void;
  /** The epoch `indices()` returns now, where the sampler tracks one. */
  readonly epoch?: number;
  /**
   * How many times `setEpoch` was called: lets a loader notice that its caller set the epoch directly
   * (torch style), even to the value it already had.
   */
  readonly epochSetCount?: number;
}

/** Options of {@link DistributedSampler}; the names follow torch's arguments. */
export interface DistributedSamplerOptions {
  /** Number of samples in the dataset. */
  datasetSize: number;
  /** Number of data-parallel ranks sharing the dataset. */
  numReplicas: number;
  /** This process's data-parallel rank, in [0, numReplicas). */
  rank: number;
  /** Shuffle by (seed + epoch); default true. */
  shuffle?: boolean;
  /** Must be the same on every rank; default 0 (torch's default). */
  seed?: number;
  /** Drop the tail so every rank gets the same count (true), or pad by repeating from the start (false, default). */
  dropLast?: boolean;
}

/** The largest dataset a permutation is built for: indices live in a Uint32Array. */
const MAX_DATASET_SIZE = 2 ** 32 - 1;

/**
 * An unbiased integer in [0, bound) for bound <= 2^32: rejection sampling on 32-bit draws, so that large
 * datasets (beyond the 24 bits of `Generator.uniform`) are shuffled uniformly too.
 */
function uniformBelow(gen: Generator, bound: number): number {
  const limit = Math.floor(2 ** 32 / bound) * bound;
  let x = gen.nextUint32();
  while (x >= limit) x = gen.nextUint32();
  return x % bound;
}

/**
 * A uniformly random permutation of 0..n-1 (Fisher-Yates), fully determined by `seed`. The same seed gives
 * the same permutation on every process and platform.
 */
export function randomPermutation(n: number, seed: number): Uint32Array {
  if (!Number.isInteger(n) || n < 0 || n > MAX_DATASET_SIZE)
    throw new ZeroFlowError(`a permutation needs a size in [0, ${MAX_DATASET_SIZE}], got ${n}`);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const gen = new Generator(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformBelow(gen, i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min)
    throw new ZeroFlowError(`DistributedSampler: ${name} must be an integer >= ${min}, got ${value}`);
}

/**
 * Restricts data loading to this rank's share of the dataset (torch's DistributedSampler). Every rank must
 * use the same `datasetSize`, `seed`, `shuffle`, `dropLast` and epoch; then the ranks' shares are disjoint
 * (apart from the padding) and together cover the dataset (apart from the dropped tail).
 *
 * @example
 * const sampler = new DistributedSampler({ datasetSize: 10, numReplicas: 4, rank: 1, shuffle: false });
 * [...sampler]; // [1, 5, 9]: positions 1, 5, 9 of 0..9 padded to 0..9,0,1
 */
export class DistributedSampler implements Sampler, Iterable<number> {
  readonly datasetSize: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices each rank yields per epoch (torch's `num_samples`). */
  readonly numSamples: number;
  /** numSamples x numReplicas: the padded or truncated length of the epoch's order (torch's `total_size`). */
  readonly totalSize: number;
  private currentEpoch = 0;
  private setCount = 0;
  /** This rank's indices of `cachedEpoch`; built lazily, once per epoch. */
  private cached: Uint32Array | null = null;
  private cachedEpoch = -1;

  constructor(opts: DistributedSamplerOptions) {
    const { datasetSize, numReplicas, rank, shuffle = true, seed = 0, dropLast = false } = opts;
    checkInteger('datasetSize', datasetSize, 0);
    checkInteger('numReplicas', numReplicas, 1);
    checkInteger('seed', seed, 0);
    if (datasetSize > MAX_DATASET_SIZE)
      throw new ZeroFlowError(`DistributedSampler: datasetSize ${datasetSize} exceeds ${MAX_DATASET_SIZE}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= numReplicas)
      throw new ZeroFlowError(`DistributedSampler: invalid rank ${rank}, it must be in [0, ${numReplicas - 1}]`);
    this.datasetSize = datasetSize;
    this.numReplicas = numReplicas;
    this.rank = rank;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    // torch: with drop_last and an uneven split, ceil((n - N) / N), which equals floor(n / N); else ceil(n / N)
    this.numSamples = dropLast ? Math.floor(datasetSize / numReplicas) : Math.ceil(datasetSize / numReplicas);
    this.totalSize = this.numSamples * numReplicas;
  }

  /** Indices this rank yields per epoch. */
  get length(): number {
    return this.numSamples;
  }

  /** The epoch whose order the sampler yields. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** How many times `setEpoch` was called. */
  get epochSetCount(): number {
    return this.setCount;
  }

  /**
   * Selects the epoch; with shuffling, each epoch has its own order (seed + epoch). As in torch, call it
   * before each epoch on every rank with the same value (the DataLoader does it for you).
   */
  setEpoch(epoch: number): void {
    checkInteger('epoch', epoch, 0);
    this.currentEpoch = epoch;
    this.setCount += 1;
  }

  /** This rank's indices for the current epoch, in order (length `numSamples`). Do not mutate. */
  indices(): Uint32Array {
    if (this.cached && this.cachedEpoch === this.currentEpoch) return this.cached;
    const n = this.datasetSize;
    const order = this.shuffle ? randomPermutation(n, this.seed + this.currentEpoch) : null;
    const mine = new Uint32Array(this.numSamples);
    // Position p of the padded order is position p mod n of the permutation: torch pads by repeating the
    // whole order as many times as needed. Without padding (dropLast) p < totalSize <= n, so no wrap occurs.
    for (let j = 0, p = this.rank; j < this.numSamples; j++, p += this.numReplicas) {
      const q = p % n;
      mine[j] = order ? order[q] : q;
    }
    this.cached = mine;
    this.cachedEpoch = this.currentEpoch;
    return mine;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
