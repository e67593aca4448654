import { describe, expect, it } from 'vitest';
import {
  createDistributedLoader,
  DataLoader,
  type DataLoaderHost,
  DistributedSampler,
  randomPermutation,
} from '../src/data/index.js';
import { initialize } from '../src/index.js';
import { Mlp } from './fixtures/mlp.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Every batch of `passes` for...of passes over the loader. */
function drain<B>(loader: Iterable<B>, passes: number): B[][] {
  return range(passes).map(() => [...loader]);
}

function host(rank: number, size: number, micro = 4, seed = 42, dropLast = false): DataLoaderHost {
  return {
    world: { dataParallelRank: rank, dataParallelSize: size },
    microBatchSize: micro,
    config: { seed, dataloader_drop_last: dropLast },
  };
}

describe('DataLoader', () => {
  it('batches an array in order, the last batch smaller unless dropLast', () => {
    const data = range(10).map((i) => `s${i}`);
    expect([...new DataLoader({ dataset: data, batchSize: 4 })]).toEqual([
      ['s0', 's1', 's2', 's3'],
      ['s4', 's5', 's6', 's7'],
      ['s8', 's9'],
    ]);
    const dropping = new DataLoader({ dataset: data, batchSize: 4, dropLast: true });
    expect(dropping.length).toBe(2);
    expect([...dropping].map((b) => b.length)).toEqual([4, 4]);
  });

  it('reads an indexed dataset and collates', () => {
    const dataset = { length: 6, get: (i: number) => ({ x: i * 10, y: i % 2 }) };
    const loader = new DataLoader({
      dataset,
      batchSize: 3,
      collate: (items) => ({ x: Float32Array.from(items.map((s) => s.x)), y: Int32Array.from(items.map((s) => s.y)) }),
    });
    const batches = [...loader];
    expect(batches.map((b) => Array.from(b.x))).toEqual([
      [0, 10, 20],
      [30, 40, 50],
    ]);
    expect(Array.from(batches[1].y)).toEqual([1, 0, 1]);
  });

  it('shuffles by seed + epoch; each completed pass moves to the next epoch', () => {
    const loader = new DataLoader({ dataset: range(50), batchSize: 8, shuffle: true, seed: 7 });
    const [e0, e1] = drain(loader, 2);
    expect(e0.flat()).toEqual(Array.from(randomPermutation(50, 7)));
    expect(e1.flat()).toEqual(Array.from(randomPermutation(50, 8)));
    expect(loader.epoch).toBe(2);
    loader.setEpoch(0);
    expect([...loader]).toEqual(e0);
    const again = new DataLoader({ dataset: range(50), batchSize: 8, shuffle: true, seed: 7 });
    expect(drain(again, 2)).toEqual([e0, e1]);
  });

  it('follows a sampler whose epoch the caller set directly (torch style)', () => {
    const sampler = new DistributedSampler({ datasetSize: 20, numReplicas: 2, rank: 0, seed: 1 });
    const loader = new DataLoader({ dataset: range(20), batchSize: 5, sampler });
    const seen: number[][] = [];
    for (const epoch of [0, 1, 1, 5]) {
      sampler.setEpoch(epoch);
      seen.push([...loader].flat());
      const reference = new DistributedSampler({ datasetSize: 20, numReplicas: 2, rank: 0, seed: 1 });
      reference.setEpoch(epoch);
      expect(seen.at(-1)).toEqual([...reference]);
    }
    expect(seen[1]).toEqual(seen[2]); // the same epoch set twice: the same order, as in torch
  });

  it('state/restore continues identically, mid-epoch and at epoch boundaries', () => {
    const make = () =>
      createDistributedLoader(host(1, 3, 4, 5), range(37), { collate: (xs: number[]) => xs.join(',') });
    const reference = make();
    const all = drain(reference, 3).flat(); // 3 epochs of ceil(13/4) = 4 batches
    expect(all.length).toBe(12);
    for (const stopAfter of [0, 1, 3, 4, 5, 9, 11, 12]) {
      const first = make();
      const it = first[Symbol.iterator]();
      const got: string[] = [];
      // consume stopAfter batches across pass boundaries, like a training loop over several epochs
      let iter: Iterator<string> = it;
      while (got.length < stopAfter) {
        const r = iter.next();
        if (r.done) iter = first[Symbol.iterator]();
        else got.push(r.value);
      }
      const saved = JSON.parse(JSON.stringify(first.state()));
      const resumed = make();
      resumed.restore(saved);
      const rest: string[] = [];
      while (got.length + rest.length < all.length) {
        const batches = [...resumed];
        rest.push(...batches);
        if (batches.length === 0) break;
      }
      expect(got.concat(rest)).toEqual(all);
    }
  });

  it('state after a completed epoch points at the next one', () => {
    const loader = new DataLoader({ dataset: range(8), batchSize: 4, shuffle: true });
    expect(loader.state()).toEqual({ epoch: 0, position: 0 });
    const it = loader[Symbol.iterator]();
    it.next();
    expect(loader.state()).toEqual({ epoch: 0, position: 1 });
    it.next();
    expect(loader.state()).toEqual({ epoch: 1, position: 0 });
    expect(() => loader.restore({ epoch: 0, position: 3 })).toThrow(/an epoch has 2 batches/);
  });
});

describe('createDistributedLoader', () => {
  it('ranks read disjoint micro-batches that cover the dataset, padded as torch pads', () => {
    for (const [n, N, micro] of [
      [64, 4, 4],
      [70, 4, 4],
      [9, 2, 3],
    ]) {
      for (let epoch = 0; epoch < 2; epoch++) {
        const loaders = range(N).map((r) => createDistributedLoader(host(r, N, micro, 3), range(n)));
        for (const l of loaders) l.setEpoch(epoch);
        const perRank = loaders.map((l) => [...l].flat());
        const lengths = perRank.map((x) => x.length);
        expect(new Set(lengths).size).toBe(1); // every rank the same number of samples (steps stay in lockstep)
        expect(lengths[0]).toBe(Math.ceil(n / N));
        const all = perRank.flat();
        expect(new Set(all)).toEqual(new Set(range(n)));
        expect(all.length - n).toBe(Math.ceil(n / N) * N - n); // the only repeats are torch's padding
      }
    }
  });

  it('applies the config: seed, micro-batch size and dataloader_drop_last', () => {
    const a = createDistributedLoader(host(0, 2, 4, 9, true), range(22));
    // 11 samples per rank, batches of 4, the last partial batch dropped
    expect([...a].map((b) => b.length)).toEqual([4, 4]);
    const b = createDistributedLoader(host(0, 2, 4, 9), range(22), { seed: 9, shuffle: true });
    const c = createDistributedLoader(host(0, 2, 4, 10), range(22));
    expect([...b].flat().slice(0, 8)).toEqual(
      [...createDistributedLoader(host(0, 2, 4, 9), range(22))].flat().slice(0, 8),
    );
    expect([...c].flat()).not.toEqual([...createDistributedLoader(host(0, 2, 4, 9), range(22))].flat());
    const unshuffled = createDistributedLoader(host(1, 2, 4), range(10), { shuffle: false, samplerDropLast: true });
    expect([...unshuffled]).toEqual([[1, 3, 5, 7], [9]]);
  });

  it('accepts a real Engine', async () => {
    const engine = await initialize({
      model: new Mlp(),
      config: { train_micro_batch_size_per_gpu: 3, seed: 17, optimizer: { type: 'SGD', params: { lr: 0.1 } } },
    });
    const loader = createDistributedLoader(engine, range(10));
    expect(loader.batchSize).toBe(3);
    expect([...loader].flat()).toEqual(Array.from(randomPermutation(10, 17)));
    await engine.close();
  });
});
