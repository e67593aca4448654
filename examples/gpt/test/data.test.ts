import { describe, expect, it } from 'vitest';
import { detokenizeParagraph, loadCorpus } from '../src/corpus.js';
import { BatchSampler, buildDataset, evalBatches, type SamplerState } from '../src/data.js';

/** tokens[i] = i: every token names its own position, so batches show exactly where they were read. */
const arange = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

describe('loadCorpus', () => {
  it('gives the whole Brown Corpus as untagged prose with its source and licence', () => {
    const corpus = loadCorpus();
    expect(corpus.documents).toBe(500);
    expect(corpus.text.length).toBeGreaterThan(5_500_000);
    expect(corpus.text.startsWith('The Fulton County Grand Jury said Friday an investigation of')).toBe(true);
    expect(corpus.text).not.toMatch(/ \w+\/(at|nn|vbd)\b/); // no part-of-speech tags left
    expect(corpus.text).not.toMatch(/``| ''| [,.;:?!](\s|$)/); // quotes converted, punctuation attached
    expect(corpus.licence).toMatch(/MIT/);
    expect(corpus.source).toMatch(/Brown Corpus/);
    expect(loadCorpus().text).toBe(corpus.text);
  });

  it('detokenizes Form C sentences', () => {
    expect(detokenizeParagraph(["``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./."])).toBe(
      '"Only a handful", the jury said.',
    );
    expect(
      detokenizeParagraph(["more/ap '/' pro/jj '/' letters/nns (/( 1/2/cd )/) ;/. ;/.", 'Ivan/np Jr./np ./.']),
    ).toBe("more 'pro' letters (1/2); Ivan Jr.");
  });
});

describe('buildDataset', () => {
  it('deals evenly spread segments to validation, losing no token', () => {
    const tokens = arange(100_000);
    const { train, val } = buildDataset(tokens, 64, { valFraction: 0.1, segmentLength: 100 });
    expect(train.length + val.length).toBe(tokens.length);
    expect(val.length).toBe(10_000);
    expect(buildDataset(tokens, 64, { valFraction: 0.25 }).val.length / tokens.length).toBeCloseTo(0.25, 1);
    const all = Int32Array.from([...train, ...val]).sort();
    expect(all).toEqual(tokens);
    // Spread: validation holds tokens from every tenth of the stream, not only from the end.
    const tenths = new Set(Array.from(val, (t) => Math.floor(t / 10_000)));
    expect(tenths.size).toBe(10);
    // Segments keep their order and contents.
    expect(val[1] - val[0]).toBe(1);
    expect(buildDataset(tokens, 64, { valFraction: 0.1, segmentLength: 100 })).toEqual({ train, val });
  });

  it('refuses splits too small to hold a sample', () => {
    expect(() => buildDataset(arange(1000), 256, { valFraction: 0.1 })).toThrow(/at least 512/);
    expect(() => buildDataset(arange(1000), 8, { valFraction: 1 })).toThrow(/valFraction/);
    expect(buildDataset(arange(1000), 8, { valFraction: 0 }).val.length).toBe(0);
  });
});

describe('BatchSampler', () => {
  const tokens = arange(10_000);
  const T = 16;

  it('reads inputs and next-token targets from one window', () => {
    const sampler = new BatchSampler({ tokens, blockSize: T, microBatchSize: 4, seed: 3 });
    const { inputIds, targets } = sampler.next();
    expect(inputIds.length).toBe(4 * T);
    for (let b = 0; b < 4; b++) {
      const start = inputIds[b * T];
      for (let t = 0; t < T; t++) {
        expect(inputIds[b * T + t]).toBe(start + t);
        expect(targets[b * T + t]).toBe(start + t + 1);
      }
    }
  });

  it('shards each global batch into disjoint parts that cover it', () => {
    const worldSize = 4;
    const gas = 3;
    const B = 2;
    const ranks = Array.from(
      { length: worldSize },
      (_, rank) =>
        new BatchSampler({
          tokens,
          blockSize: T,
          microBatchSize: B,
          gradientAccumulationSteps: gas,
          rank,
          worldSize,
          seed: 1,
        }),
    );
    const S = ranks[0].samplesPerGlobalBatch;
    expect(S).toBe(B * gas * worldSize);
    for (let g = 0; g < 5; g++) {
      const samples: number[] = [];
      const starts: number[] = [];
      for (let m = 0; m < gas; m++) {
        for (const sampler of ranks) {
          samples.push(...sampler.sampleIndices(g, m));
          const batch = sampler.next();
          expect([batch.globalBatch, batch.microStep]).toEqual([g, m]);
          for (let b = 0; b < B; b++) starts.push(batch.inputIds[b * T]);
        }
      }
      expect(samples.sort((a, b) => a - b)).toEqual(Array.from({ length: S }, (_, j) => g * S + j));
      expect(new Set(starts).size).toBe(S); // no two ranks read the same window
    }
  });

  it('visits every window once an epoch, shuffled differently per seed and epoch', () => {
    const sampler = new BatchSampler({ tokens: arange(1000), blockSize: 10, microBatchSize: 1, seed: 5 });
    const W = sampler.windowsPerEpoch;
    expect(W).toBe(99);
    const epoch0 = Array.from({ length: W }, (_, s) => sampler.offsetOf(s));
    const epoch1 = Array.from({ length: W }, (_, s) => sampler.offsetOf(W + s));
    for (const epoch of [epoch0, epoch1]) {
      const shift = epoch[0] % 10;
      expect(epoch.every((o) => o % 10 === shift && o + 11 <= 1000)).toBe(true);
      expect(new Set(epoch).size).toBe(W);
    }
    expect(epoch1).not.toEqual(epoch0);
    const other = new BatchSampler({ tokens: arange(1000), blockSize: 10, microBatchSize: 1, seed: 6 });
    expect(Array.from({ length: W }, (_, s) => other.offsetOf(s))).not.toEqual(epoch0);
    const same = new BatchSampler({ tokens: arange(1000), blockSize: 10, microBatchSize: 1, seed: 5 });
    expect(Array.from({ length: W }, (_, s) => same.offsetOf(W + s))).toEqual(epoch1);
  });

  it('continues identically after state() and restore()', () => {
    const options = {
      tokens,
      blockSize: T,
      microBatchSize: 3,
      gradientAccumulationSteps: 2,
      rank: 1,
      worldSize: 2,
      seed: 9,
    };
    const original = new BatchSampler(options);
    for (let i = 0; i < 7; i++) original.next();
    const saved: SamplerState = JSON.parse(JSON.stringify(original.state()));
    expect([saved.globalBatch, saved.microStep]).toEqual([3, 1]);
    const expected = Array.from({ length: 500 }, () => original.next()); // crosses epoch boundaries
    const resumed = new BatchSampler(options);
    resumed.restore(saved);
    for (const batch of expected) expect(resumed.next()).toEqual(batch);
  });

  it('keeps global batches across world sizes with the same global batch size', () => {
    const collect = (worldSize: number, gas: number, g: number) => {
      const starts: number[] = [];
      for (let rank = 0; rank < worldSize; rank++) {
        const s = new BatchSampler({
          tokens,
          blockSize: T,
          microBatchSize: 2,
          gradientAccumulationSteps: gas,
          rank,
          worldSize,
          seed: 4,
        });
        for (let m = 0; m < gas; m++) {
          const { inputIds } = s.batchAt(g, m);
          starts.push(inputIds[0], inputIds[T]);
        }
      }
      return starts.sort((a, b) => a - b);
    };
    expect(collect(4, 1, 7)).toEqual(collect(2, 2, 7));
    expect(collect(1, 4, 7)).toEqual(collect(2, 2, 7));
    const four = new BatchSampler({
      tokens,
      blockSize: T,
      microBatchSize: 2,
      gradientAccumulationSteps: 1,
      worldSize: 4,
      seed: 4,
    });
    for (let i = 0; i < 3; i++) four.next();
    const two = new BatchSampler({
      tokens,
      blockSize: T,
      microBatchSize: 2,
      gradientAccumulationSteps: 2,
      worldSize: 2,
      seed: 4,
    });
    two.restore(four.state());
    expect(two.next().globalBatch).toBe(3);
  });

  it('refuses a state from another schedule or a mid-batch state that does not fit', () => {
    const a = new BatchSampler({ tokens, blockSize: T, microBatchSize: 2, gradientAccumulationSteps: 4, seed: 1 });
    a.next();
    const b = new BatchSampler({ tokens, blockSize: T, microBatchSize: 2, gradientAccumulationSteps: 4, seed: 2 });
    expect(() => b.restore(a.state())).toThrow(/seed: stored 1, here 2/);
    const c = new BatchSampler({
      tokens,
      blockSize: T,
      microBatchSize: 2,
      gradientAccumulationSteps: 1,
      worldSize: 4,
      seed: 1,
    });
    for (let i = 0; i < 2; i++) a.next();
    expect(() => c.restore(a.state())).toThrow(/global-batch boundary/);
    expect(() => new BatchSampler({ tokens: arange(20), blockSize: 16, microBatchSize: 1 })).toThrow(/too few/);
    expect(() => new BatchSampler({ tokens, blockSize: T, microBatchSize: 1, rank: 2, worldSize: 2 })).toThrow(
      /rank 2/,
    );
  });
});

describe('evalBatches', () => {
  it('gives every rank the same number of disjoint consecutive windows', () => {
    const tokens = arange(1000);
    const perRank = [0, 1, 2].map((rank) => [
      ...evalBatches(tokens, { blockSize: 10, batchSize: 4, rank, worldSize: 3 }),
    ]);
    expect(perRank.map((batches) => batches.length)).toEqual([8, 8, 8]); // 99 windows -> 8 full global batches of 12
    const starts = perRank.flatMap((batches) => batches.flatMap((x) => [0, 1, 2, 3].map((b) => x.inputIds[b * 10])));
    expect(new Set(starts).size).toBe(96);
    expect(perRank[1][0].inputIds[0]).toBe(40);
    expect(perRank[1][0].targets[0]).toBe(41);
    expect([...evalBatches(tokens, { blockSize: 10, batchSize: 4, maxBatches: 2 })]).toHaveLength(2);
  });
});
