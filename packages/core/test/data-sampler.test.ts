import { describe, expect, it } from 'vitest';
import { DistributedSampler, randomPermutation } from '../src/data/index.js';

/**
 * torch.utils.data.DistributedSampler.__iter__ and __init__, transcribed step by step on plain arrays
 * (Python list semantics: `indices * k` repeats, `[a:b:c]` slices), applied to a given base order.
 */
function torchReference(order: number[], numReplicas: number, rank: number, dropLast: boolean): number[] {
  const n = order.length;
  // Math.max: where Python's math.ceil(-0.6) is 0, JavaScript's Math.ceil gives -0
  const numSamples =
    dropLast && n % numReplicas !== 0
      ? Math.max(0, Math.ceil((n - numReplicas) / numReplicas))
      : Math.ceil(n / numReplicas);
  const totalSize = numSamples * numReplicas;
  let indices = [...order];
  if (!dropLast) {
    const paddingSize = totalSize - indices.length;
    if (paddingSize <= indices.length) indices = indices.concat(indices.slice(0, paddingSize));
    else {
      const repeated: number[] = [];
      for (let k = 0; k < Math.ceil(paddingSize / indices.length); k++) repeated.push(...indices);
      indices = indices.concat(repeated.slice(0, paddingSize));
    }
  } else indices = indices.slice(0, totalSize);
  expect(indices.length).toBe(totalSize);
  const mine: number[] = [];
  for (let i = rank; i < totalSize; i += numReplicas) mine.push(indices[i]);
  expect(mine.length).toBe(numSamples);
  return mine;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const ranksOf = (n: number, N: number, extra: { shuffle?: boolean; dropLast?: boolean; seed?: number } = {}) =>
  range(N).map((rank) => new DistributedSampler({ datasetSize: n, numReplicas: N, rank, ...extra }));

describe('DistributedSampler: torch semantics, by hand', () => {
  it('pads by repeating from the start (10 samples, 4 ranks)', () => {
    // torch: num_samples = ceil(10/4) = 3, total_size 12, order 0..9 + [0, 1]
    const s = ranksOf(10, 4, { shuffle: false });
    expect(s.map((x) => [...x])).toEqual([
      [0, 4, 8],
      [1, 5, 9],
      [2, 6, 0],
      [3, 7, 1],
    ]);
    expect(s.every((x) => x.length === 3 && x.totalSize === 12)).toBe(true);
  });

  it('drops the tail (10 samples, 4 ranks, dropLast)', () => {
    // torch: num_samples = ceil((10-4)/4) = 2, total_size 8, order 0..7
    const s = ranksOf(10, 4, { shuffle: false, dropLast: true });
    expect(s.map((x) => [...x])).toEqual([
      [0, 4],
      [1, 5],
      [2, 6],
      [3, 7],
    ]);
  });

  it('repeats the whole order several times when ranks outnumber samples (3 samples, 8 ranks)', () => {
    // torch: padding 5 > 3, so (indices * ceil(5/3))[:5] = [0,1,2,0,1]; padded order 0,1,2,0,1,2,0,1
    expect(ranksOf(3, 8, { shuffle: false }).map((x) => [...x])).toEqual([[0], [1], [2], [0], [1], [2], [0], [1]]);
    // with drop_last: ceil((3-8)/8) = 0 samples per rank
    expect(ranksOf(3, 8, { shuffle: false, dropLast: true }).map((x) => x.length)).toEqual(range(8).map(() => 0));
  });

  it('an even split is the same with or without dropLast (8 samples, 4 ranks)', () => {
    const a = ranksOf(8, 4, { shuffle: false }).map((x) => [...x]);
    expect(a).toEqual([
      [0, 4],
      [1, 5],
      [2, 6],
      [3, 7],
    ]);
    expect(ranksOf(8, 4, { shuffle: false, dropLast: true }).map((x) => [...x])).toEqual(a);
  });

  it('an empty dataset yields nothing', () => {
    expect(ranksOf(0, 3).map((x) => [...x])).toEqual([[], [], []]);
  });

  it('shuffled: equals torch`s algorithm applied to the permutation of seed + epoch', () => {
    for (const [n, N] of [
      [10, 4],
      [7, 3],
      [3, 5],
      [16, 4],
      [1, 1],
      [29, 6],
    ]) {
      for (const dropLast of [false, true]) {
        for (const epoch of [0, 3]) {
          const seed = 11;
          const perm = Array.from(randomPermutation(n, seed + epoch));
          for (const s of ranksOf(n, N, { seed, dropLast })) {
            s.setEpoch(epoch);
            expect([...s]).toEqual(torchReference(perm, N, s.rank, dropLast));
          }
        }
      }
    }
  });

  it('unshuffled: equals torch`s algorithm on the identity order for many sizes', () => {
    for (let n = 0; n <= 13; n++) {
      for (let N = 1; N <= 6; N++) {
        for (const dropLast of [false, true]) {
          for (const s of ranksOf(n, N, { shuffle: false, dropLast })) {
            expect([...s]).toEqual(torchReference(range(n), N, s.rank, dropLast));
          }
        }
      }
    }
  });
});

describe('DistributedSampler: coverage and determinism', () => {
  it('ranks are disjoint and complete each epoch; padding repeats only the first samples of the order', () => {
    for (const [n, N] of [
      [100, 4],
      [101, 4],
      [103, 7],
      [5, 8],
    ]) {
      for (const epoch of [0, 1, 2]) {
        const samplers = ranksOf(n, N, { seed: 5 });
        for (const s of samplers) s.setEpoch(epoch);
        const counts = new Array(n).fill(0);
        for (const s of samplers) for (const i of s) counts[i]++;
        const perm = randomPermutation(n, 5 + epoch);
        const total = samplers[0].totalSize;
        // each sample once, plus one more for each padded slot; the padded slots repeat perm[0..]
        const expected = new Array(n).fill(0);
        for (let p = 0; p < total; p++) expected[perm[p % n]]++;
        expect(counts).toEqual(expected);
        expect(counts.every((c) => c >= 1)).toBe(true);
        expect(samplers.every((s) => s.length === Math.ceil(n / N))).toBe(true);
      }
    }
  });

  it('dropLast: ranks are disjoint, equal in size, and miss only the tail of the permutation', () => {
    const n = 103;
    const N = 7;
    const samplers = ranksOf(n, N, { seed: 9, dropLast: true });
    for (const s of samplers) s.setEpoch(4);
    const seen = samplers.flatMap((s) => [...s]);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(Math.floor(n / N) * N);
    const perm = randomPermutation(n, 9 + 4);
    expect(new Set(seen)).toEqual(new Set(perm.subarray(0, seen.length)));
  });

  it('same seed and epoch give the same order; epochs and seeds differ', () => {
    const a = new DistributedSampler({ datasetSize: 200, numReplicas: 2, rank: 1, seed: 3 });
    const b = new DistributedSampler({ datasetSize: 200, numReplicas: 2, rank: 1, seed: 3 });
    a.setEpoch(2);
    b.setEpoch(2);
    expect([...a]).toEqual([...b]);
    const e2 = [...a];
    a.setEpoch(3);
    expect([...a]).not.toEqual(e2);
    a.setEpoch(2);
    expect([...a]).toEqual(e2);
    const c = new DistributedSampler({ datasetSize: 200, numReplicas: 2, rank: 1, seed: 4 });
    c.setEpoch(2);
    expect([...c]).not.toEqual(e2);
    // torch shuffles by seed + epoch: seed 3 epoch 2 is seed 4 epoch 1
    c.setEpoch(1);
    expect([...c]).toEqual(e2);
  });

  it('randomPermutation is a uniform permutation', () => {
    const n = 4;
    const counts = new Map<string, number>();
    const trials = 24_000;
    for (let s = 0; s < trials; s++) {
      const p = randomPermutation(n, s);
      expect([...p].sort()).toEqual(range(n));
      const key = p.join(',');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    // chi-square with 23 degrees of freedom: 0.999 quantile is about 49.7
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - 1000) ** 2 / 1000;
    expect(chi2).toBeLessThan(49.7);
    // position of element 0 in larger permutations is uniform too (first-index bias check)
    const pos = new Array(10).fill(0);
    for (let s = 0; s < 10_000; s++) pos[randomPermutation(10, 1_000_000 + s).indexOf(0)]++;
    for (const c of pos) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });

  it('rejects invalid arguments', () => {
    expect(() => new DistributedSampler({ datasetSize: 10, numReplicas: 2, rank: 2 })).toThrow(/invalid rank 2/);
    expect(() => new DistributedSampler({ datasetSize: 10, numReplicas: 0, rank: 0 })).toThrow(/numReplicas/);
    expect(() => new DistributedSampler({ datasetSize: -1, numReplicas: 1, rank: 0 })).toThrow(/datasetSize/);
    expect(() => new DistributedSampler({ datasetSize: 4, numReplicas: 1, rank: 0 }).setEpoch(1.5)).toThrow(/epoch/);
  });
});
