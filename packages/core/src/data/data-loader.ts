/**
 * Batches of a dataset in a sampler's order, resumable mid-epoch from a checkpoint. Like DeepSpeed's
 * DeepSpeedDataLoader, each completed pass moves to the next epoch (so the shuffle differs between passes
 * without the caller having to remember `setEpoch`), while an epoch set explicitly is used as given.
 */
import { ZeroFlowError } from '../errors.js';
import { DistributedSampler, type Sampler } from './distributed-sampler.js';

/** A dataset read by index (torch's map-style dataset). */
export interface IndexedDataset<T> {
  readonly length: number;
  get(index: number): T;
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions<T, B> {
  /** The samples: an array or anything with `length` and `get(i)`. */
  dataset: IndexedDataset<T> | readonly T[];
  /** Samples per batch (the micro-batch of one rank). */
  batchSize: number;
  /** The order of the samples (e.g. a {@link DistributedSampler}); overrides `shuffle` and `seed`. */
  sampler?: Sampler;
  /** Without a sampler: shuffle every epoch by (seed + epoch); default false, as in torch. */
  shuffle?: boolean;
  /** Without a sampler: seed of the shuffle; default 0. */
  seed?: number;
  /** Drop the last batch of an epoch when it is smaller than `batchSize`; default false. */
  dropLast?: boolean;
  /** Turns the samples of one batch into the batch; default: the array of samples. */
  collate?: (items: T[]) => B;
}

/** Where a loader stands, for checkpoints: the epoch and the batches of it already yielded. */
export interface DataLoaderState {
  epoch: number;
  /** Batches of `epoch` already yielded; the next one yielded is batch `position`. */
  position: number;
}

function asIndexed<T>(dataset: IndexedDataset<T> | readonly T[]): IndexedDataset<T> {
  if (Array.isArray(dataset)) {
    const items = dataset as readonly T[];
    return { length: items.length, get: (i) => items[i] };
  }
  return dataset as IndexedDataset<T>;
}

function checkCount(what: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min)
    throw new ZeroFlowError(`DataLoader: ${what} must be an integer >= ${min}, got ${value}`);
}

/**
 * Yields batches of `batchSize` samples in the sampler's order. A `for...of` over the loader yields the rest
 * of the current epoch (all of it when starting fresh); after a completed epoch the next pass yields the
 * next epoch. `state()`/`restore()` save and resume the exact position, so a resumed run sees the same
 * batches as an uninterrupted one.
 *
 * @example
 * const loader = new DataLoader({ dataset: samples, batchSize: 8, shuffle: true, seed: 1 });
 * for (const batch of loader) train(batch);   // epoch 0
 * for (const batch of loader) train(batch);   // epoch 1, a different order
 */
export class DataLoader<T, B = T[]> implements Iterable<B> {
  readonly dataset: IndexedDataset<T>;
  readonly sampler: Sampler;
  readonly batchSize: number;
  readonly dropLast: boolean;
  private readonly collate: (items: T[]) => B;
  private epochNow = 0;
  private positionNow = 0;
  /** The sampler's epoch and set count after the loader last set it: a change means the caller set it. */
  private synced: { epoch: number | undefined; count: number | undefined } = { epoch: undefined, count: undefined };

  constructor(opts: DataLoaderOptions<T, B>) {
    this.dataset = asIndexed(opts.dataset);
    checkCount('batchSize', opts.batchSize, 1);
    this.batchSize = opts.batchSize;
    this.dropLast = opts.dropLast ?? false;
    this.collate = opts.collate ?? ((items: T[]) => items as unknown as B);
    if (opts.sampler) {
      const s = opts.sampler;
      if (s instanceof DistributedSampler && s.datasetSize !== this.dataset.length) {
        throw new ZeroFlowError(
          `DataLoader: the sampler was built for ${s.datasetSize} samples but the dataset has ${this.dataset.length}`,
        );
      }
      this.sampler = s;
      this.epochNow = s.epoch ?? 0;
      this.synced = { epoch: s.epoch, count: s.epochSetCount };
    } else {
      this.sampler = new DistributedSampler({
        datasetSize: this.dataset.length,
        numReplicas: 1,
        rank: 0,
        shuffle: opts.shuffle ?? false,
        seed: opts.seed ?? 0,
      });
      this.synced = { epoch: this.sampler.epoch, count: this.sampler.epochSetCount };
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch the loader is in (or enters on the next pass, once the current one is complete). */
  get epoch(): number {
    return this.state().epoch;
  }

  /** Starts `epoch` from its first batch on the next pass; the same on every rank. */
  setEpoch(epoch: number): void {
    checkCount('epoch', epoch, 0);
    this.epochNow = epoch;
    this.positionNow = 0;
    this.syncSampler();
  }

  /** The position to save in a checkpoint (JSON-serializable). */
  state(): DataLoaderState {
    this.adoptSamplerEpoch();
    // a completed epoch is the start of the next, so that a resume after it does not replay an empty pass
    if (this.length > 0 && this.positionNow >= this.length) return { epoch: this.epochNow + 1, position: 0 };
    return { epoch: this.epochNow, position: this.positionNow };
  }

  /** Continues from a saved position: the next batch yielded is the one that followed it. */
  restore(state: DataLoaderState): void {
    checkCount('state.epoch', state.epoch, 0);
    checkCount('state.position', state.position, 0);
    if (state.position > this.length) {
      throw new ZeroFlowError(
        `DataLoader: cannot restore position ${state.position}, an epoch has ${this.length} batches ` +
          '(was the checkpoint written with another dataset, batch size or data-parallel size?)',
      );
    }
    this.epochNow = state.epoch;
    this.positionNow = state.position;
    this.syncSampler();
  }

  *[Symbol.iterator](): Generator<B, void, undefined> {
    this.adoptSamplerEpoch();
    if (this.length > 0 && this.positionNow >= this.length) {
      this.epochNow += 1;
      this.positionNow = 0;
    }
    const epoch = this.epochNow;
    this.syncSampler();
    const order = this.sampler.indices();
    const batches = this.length;
    // stops early if setEpoch/restore moved the loader while this pass was suspended at a yield
    while (this.epochNow === epoch && this.positionNow < batches) {
      const start = this.positionNow * this.batchSize;
      const end = Math.min(start + this.batchSize, order.length);
      const items: T[] = new Array(end - start);
      for (let k = start; k < end; k++) items[k - start] = this.dataset.get(order[k]);
      this.positionNow += 1;
      yield this.collate(items);
    }
  }

  private syncSampler(): void {
    this.sampler.setEpoch?.(this.epochNow);
    this.synced = { epoch: this.sampler.epoch, count: this.sampler.epochSetCount };
  }

  /** torch-style code sets the sampler's epoch itself: follow it, from the start of that epoch. */
  private adoptSamplerEpoch(): void {
    const { epoch, epochSetCount } = this.sampler;
    if (epoch === undefined) return;
    if (epoch !== this.synced.epoch || epochSetCount !== this.synced.count) {
      this.epochNow = epoch;
      this.positionNow = 0;
      this.synced = { epoch, count: epochSetCount };
    }
  }
}
