export {
  DataLoader,
  type DataLoaderOptions,
  type DataLoaderState,
  type IndexedDataset,
} from './data-loader.js';
export {
  createDistributedLoader,
  type DataLoaderHost,
  type DistributedLoaderOptions,
} from './distributed-loader.js';
export {
  DistributedSampler,
  type DistributedSamplerOptions,
  randomPermutation,
  type Sampler,
} from './distributed-sampler.js';
