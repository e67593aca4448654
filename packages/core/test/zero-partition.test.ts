import { describe, expect, it } from 'vitest';
import { layoutFlatGroups } from '../src/engine/flat-params.js';
import { Parameter } from '../src/nn/parameter.js';
import {
  BucketReducer,
  gatherShard,
  isContiguous,
  PADDING_SEGMENT,
  partitionByUnits,
  partitionContiguous,
  partitionMeta,
  rangesFromMeta,
  shardSegments,
} from '../src/zero/index.js';

function params(sizes: number[]) {
  return sizes.map((n, i) => ({
    name: `p${i}`,
    param: new Parameter([n], { kind: 'constant', value: i + 1 }, new Float32Array(n).fill(i + 1)),
  }));
}

describe('ZeRO partitions', () => {
  const named = params([5, 7, 3, 10]); // 25 elements, padded to 27 for N = 3
  const [group] = layoutFlatGroups(named, [{ names: named.map((p) => p.name) }], 3);

  it('contiguous: rank r owns [r*S, (r+1)*S), the padded tail belongs to the last rank', () => {
    expect(group.paddedSize).toBe(27);
    const p2 = partitionContiguous(group, 3, 2);
    expect(p2.ranges).toEqual([{ flatStart: 18, shardStart: 0, length: 9 }]);
    expect(isContiguous(p2)).toBe(true);
    expect(shardSegments(p2)).toEqual([
      { name: 'p3', offset: 0, length: 7 },
      { name: PADDING_SEGMENT, offset: 7, length: 2 },
    ]);
  });

  it('units: chunk r of every unit; the shards of all ranks tile the flat group exactly once', () => {
    const covered = new Int32Array(group.paddedSize);
    for (let r = 0; r < 3; r++) {
      const p = partitionByUnits(group, 3, r, 10); // units of 9: [0,9) [9,18) [18,27)
      expect(p.units.map((u) => u.length)).toEqual([9, 9, 9]);
      expect(p.shardSize).toBe(9);
      for (const x of p.ranges) for (let i = 0; i < x.length; i++) covered[x.flatStart + i]++;
      // segments cover the shard in order without gaps
      let off = 0;
      for (const s of shardSegments(p)) {
        expect(s.offset).toBe(off);
        off += s.length;
      }
      expect(off).toBe(p.shardSize);
      expect(rangesFromMeta(partitionMeta(p), r)).toEqual(p.ranges);
      const flat = Float32Array.from({ length: 27 }, (_, i) => i);
      const shard = new Float32Array(p.shardSize);
      gatherShard(p, flat, shard);
      expect(Array.from(shard)).toEqual(
        p.ranges.flatMap((x) => Array.from({ length: x.length }, (_, i) => x.flatStart + i)),
      );
    }
    expect(Array.from(covered).every((c) => c === 1)).toBe(true);
  });

  it('bucket reducer (one rank): gradients land in the shard, tied uses wait for their second gradient', () => {
    const p = partitionByUnits(group, 1, 0, 8);
    const shard = new Float32Array(p.shardSize);
    const reducer = new BucketReducer([p], null, [shard], { reduceScatter: true, overlap: true, maxInFlight: 2 });
    reducer.begin();
    const [a, b, c, d] = named.map((x) => x.param);
    for (const q of [a, b, c, d, a]) reducer.onUse(q);
    reducer.onGrad(d, new Float32Array(10).fill(1));
    reducer.onGrad(a, new Float32Array(5).fill(2));
    reducer.onGrad(c, new Float32Array(3).fill(3));
    reducer.onGrad(b, new Float32Array(7).fill(4));
    reducer.onGrad(a, new Float32Array(5).fill(5));
    expect(reducer.finish()).toEqual([]);
    expect(Array.from(shard)).toEqual([...Array(5).fill(7), ...Array(7).fill(4), 3, 3, 3, ...Array(10).fill(1), 0, 0]);
  });
});
