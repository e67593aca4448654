/**
 * The data loader a training engine hands out: this rank's share of the dataset, in micro-batches, ordered
 * by the job's seed, as DeepSpeed's `deepspeed_io` builds it (a DistributedSampler over the data-parallel
 * group, `dataloader_drop_last` applied to the last batch).
 */
import { DataLoader, type IndexedDataset } from './data-loader.js';
import { DistributedSampler } from './distributed-sampler.js';

/** The parts of an engine the loader is built from (`Engine` has them all). */
export interface DataLoaderHost {
  world: { dataParallelRank: number; dataParallelSize: number };
  /** Samples per micro-batch of one rank (`train_micro_batch_size_per_gpu`). */
  microBatchSize: number;
  config: { seed: number; dataloader_drop_last: boolean };
}

/** Options of {@link createDistributedLoader}; each defaults to the engine's setting. */
export interface DistributedLoaderOptions<T, B> {
  /** Default: the engine's micro-batch size. */
  batchSize?: number;
  /** Shuffle by (seed + epoch); default true, as DeepSpeed's sampler. */
  shuffle?: boolean;
  /** Default: the config's `seed`. The same on every rank. */
  seed?: number;
  /** Drop each epoch's last, smaller micro-batch; default: the config's `dataloader_drop_last`. */
  dropLast?: boolean;
  /**
   * Drop the dataset's tail so that it splits evenly over the ranks, instead of padding by repeating
   * samples from the start; default false, as DeepSpeed.
   */
  samplerDropLast?: boolean;
  collate?: (items: T[]) => B;
}

/**
 * A loader of this rank's micro-batches: a {@link DistributedSampler} over the data-parallel group (rank
 * `dataParallelRank` of `dataParallelSize`, so tensor/pipeline-parallel peers read the same samples),
 * batches of the engine's micro-batch size. Every rank must call it with the same dataset and options.
 */
export function createDistributedLoader<T, B = T[]>(
  host: DataLoaderHost,
  dataset: IndexedDataset<T> | readonly T[],
  opts: DistributedLoaderOptions<T, B> = {},
): DataLoader<T, B> {
  const sampler = new DistributedSampler({
    datasetSize: dataset.length,
    numReplicas: host.world.dataParallelSize,
    rank: host.world.dataParallelRank,
    shuffle: opts.shuffle ?? true,
    seed: opts.seed ?? host.config.seed,
    dropLast: opts.samplerDropLast ?? false,
  });
  return new DataLoader<T, B>({
    dataset,
    sampler,
    batchSize: opts.batchSize ?? host.microBatchSize,
    dropLast: opts.dropLast ?? host.config.dataloader_drop_last,
    collate: opts.collate,
  });
}
