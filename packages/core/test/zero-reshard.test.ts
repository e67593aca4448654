import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CheckpointManifest } from '../src/engine/checkpoint.js';
import { layoutFlatGroups } from '../src/engine/flat-params.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { Parameter } from '../src/nn/parameter.js';
import { createOptimizer } from '../src/optim/create-optimizer.js';
import type { OwnerState } from '../src/plugin.js';
import {
  assembleFullOptimizerState,
  type GroupPartition,
  gatherShard,
  loadShardedStateDict,
  type PartitionMeta,
  partitionByUnits,
  partitionContiguous,
  partitionMeta,
  replicatedLayout,
  reshardOwnerState,
  shardedStateDict,
  sliceOptimizerState,
} from '../src/zero/index.js';

// Two param groups as initialize builds them: decayed matrices, then 1-D parameters. 25 + 6 elements.
const SIZES: Record<string, number> = { w0: 5, w1: 7, w2: 3, w3: 10, b0: 4, b1: 2 };
const GROUPS = [{ names: ['w0', 'w1', 'w2', 'w3'] }, { names: ['b0', 'b1'] }];
const named = Object.entries(SIZES).map(([name, n]) => ({
  name,
  param: new Parameter([n], { kind: 'constant', value: 0 }, new Float32Array(n)),
}));
const BUFFERS = ['exp_avg', 'exp_avg_sq'];

/** The state every layout must reproduce: distinct values per (buffer, parameter, element). */
function truth(buffer: string, name: string): Float32Array {
  const b = BUFFERS.indexOf(buffer);
  return Float32Array.from({ length: SIZES[name] }, (_, k) => (b + 1) * 1000 + name.charCodeAt(0) * 10 + k + 0.25);
}

type Layout = { stage: 0 } | { stage: 1; n: number } | { stage: 2; n: number; unit: number };

function partitions(layout: Layout, rank: number): GroupPartition[] {
  const n = layout.stage === 0 ? 1 : layout.n;
  return layoutFlatGroups(named, GROUPS, n).map((g) =>
    layout.stage === 2 ? partitionByUnits(g, n, rank, layout.unit) : partitionContiguous(g, n, rank),
  );
}

/** This rank's state as the layout's real owner saves it: a real AdamW holding the shard, shardedStateDict. */
function savedState(layout: Layout, rank: number): OwnerState {
  const parts = partitions(layout, rank);
  const optimizer = createOptimizer('AdamW', { lr: 0.01 }, [{ weight_decay: 0.1 }, { weight_decay: 0 }]);
  optimizer.loadStateDict({
    type: 'AdamW',
    groups: parts.map((p, i) => ({
      options: { ...optimizer.paramGroups[i] },
      step: 7,
      buffers: Object.fromEntries(
        BUFFERS.map((b) => {
          const flat = new Float32Array(p.group.paddedSize);
          for (const e of p.group.entries) flat.set(truth(b, e.name), e.offset);
          const shard = new Float32Array(p.shardSize);
          gatherShard(p, flat, shard);
          return [b, shard];
        }),
      ),
    })),
  });
  if (layout.stage === 0) {
    // Stage 0 saves `{type, groups}` and full unpadded buffers.
    const sd = optimizer.stateDict();
    const tensors: OwnerState['tensors'] = {};
    sd.groups.forEach((g, i) => {
      for (const [k, v] of Object.entries(g.buffers))
        tensors[`optimizer.group${i}.${k}`] = { shape: [v.length], data: v };
    });
    const groups = sd.groups.map((g) => ({ options: g.options, step: g.step, buffers: Object.keys(g.buffers) }));
    return { tensors, meta: { type: sd.type, groups } };
  }
  return shardedStateDict(optimizer, parts, layout.stage);
}

function layoutMeta(layout: Layout): PartitionMeta[] {
  if (layout.stage === 0) return replicatedLayout(GROUPS, new Map(Object.entries(SIZES)));
  return partitions(layout, 0).map(partitionMeta);
}

/** Reshards a state saved at `from` for rank `rank` of `to`, through the public functions. */
function reshard(from: Layout, to: Layout, rank: number): OwnerState {
  const saved = [0, 1, 2, 3].map((r) => (from.stage === 0 && r > 0 ? null : savedState(from, r)));
  const full = assembleFullOptimizerState(saved[0]!.meta, layoutMeta(from), (r) => saved[r]!.tensors);
  return sliceOptimizerState(full, { zeroStage: to.stage, partitions: layoutMeta(to), dpRank: rank });
}

describe('resharding optimizer state between ZeRO layouts', () => {
  const layouts: [string, Layout][] = [
    ['stage 0', { stage: 0 }],
    ['stage 1, N=2', { stage: 1, n: 2 }],
    ['stage 1, N=4', { stage: 1, n: 4 }],
    ['stage 2, N=2, units of 6', { stage: 2, n: 2, unit: 6 }],
    ['stage 2, N=3, units of 9', { stage: 2, n: 3, unit: 9 }],
  ];
  for (const [fromName, from] of layouts) {
    for (const [toName, to] of layouts) {
      it(`${fromName} -> ${toName}: every rank gets exactly the state its owner would have saved`, () => {
        const n = to.stage === 0 ? 1 : to.n;
        for (let rank = 0; rank < n; rank++) {
          const got = reshard(from, to, rank);
          const want = savedState(to, rank);
          expect(Object.keys(got.tensors).sort()).toEqual(Object.keys(want.tensors).sort());
          for (const [k, t] of Object.entries(want.tensors)) expect(got.tensors[k].data, k).toEqual(t.data);
          expect(got.meta).toEqual(want.meta);
        }
      });
    }
  }

  it("the result loads through the target owner's own loader (loadShardedStateDict)", () => {
    const to: Layout = { stage: 2, n: 3, unit: 9 };
    const parts = partitions(to, 1);
    const optimizer = createOptimizer('AdamW', { lr: 0.01 }, [{ weight_decay: 0.1 }, { weight_decay: 0 }]);
    loadShardedStateDict(optimizer, parts, 2, reshard({ stage: 1, n: 2 }, to, 1));
    const sd = optimizer.stateDict();
    expect(sd.groups[0].step).toBe(7);
    expect(sd.groups[0].buffers.exp_avg).toEqual(savedState(to, 1).tensors['optimizer.group0.exp_avg'].data);
  });

  it('a parameter missing on either side is an error that names it', () => {
    const full = assembleFullOptimizerState(
      savedState({ stage: 0 }, 0).meta,
      layoutMeta({ stage: 0 }),
      () => savedState({ stage: 0 }, 0).tensors,
    );
    const renamed = replicatedLayout(
      [{ names: ['w0', 'w1', 'w2', 'w9'] }, { names: ['b0', 'b1'] }],
      new Map(Object.entries({ ...SIZES, w9: 10 })),
    );
    expect(() => sliceOptimizerState(full, { zeroStage: 0, partitions: renamed, dpRank: 0 })).toThrow(
      /missing from the checkpoint: w9; not in this run: w3/,
    );
  });

  it('reshardOwnerState reads the owner files of a checkpoint folder by the manifest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-reshard-'));
    const from: Layout = { stage: 2, n: 2, unit: 6 };
    const files: CheckpointManifest['files'] = [0, 1].map((rank) => {
      const file = `owner_rank${rank}.safetensors`;
      const { tensors } = savedState(from, rank);
      writeSafetensors(
        join(dir, file),
        Object.fromEntries(
          Object.entries(tensors).map(([k, t]) => [k, { dtype: 'F32', shape: t.shape, data: t.data }]),
        ),
      );
      return { file, rank, kind: 'owner', bytes: 0, sha256: '', tensors: {} };
    });
    const manifest = {
      tag: 't',
      world: { worldSize: 2, dataParallelSize: 2, tensorParallelSize: 1, pipelineParallelSize: 1, zeroStage: 2 },
      owner: savedState(from, 0).meta,
      files,
    } as unknown as CheckpointManifest;
    const got = reshardOwnerState(manifest, dir, { zeroStage: 0, partitions: layoutMeta({ stage: 0 }), dpRank: 0 });
    const want = savedState({ stage: 0 }, 0);
    for (const [k, t] of Object.entries(want.tensors)) expect(got.tensors[k].data, k).toEqual(t.data);
  });
});
