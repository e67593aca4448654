import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT, Llama } from '@zeroflow/models';
import { runZero } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../src/command.js';
import { modelParameterShapes, numel } from '../src/estimate/model-shapes.js';
import { estimateModelStates } from '../src/estimate/model-states.js';
import { runCli } from '../src/main.js';

const dir = mkdtempSync(join(tmpdir(), 'zf-estimate-'));

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

function configFile(name: string, config: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const GPT_ARGS = ['--model', 'gpt2', '--n-layer', '2', '--n-embd', '64', '--n-head', '4', '--vocab', '256'];

describe('parameter count Ψ matches the models as built', () => {
  it('GPT-2: tied head, biases, LayerNorms, learned positions of --seq-len', () => {
    const model = new GPT({ vocabSize: 97, blockSize: 24, nLayer: 3, nHead: 4, nEmbd: 32, nInner: 80 });
    const shapes = modelParameterShapes({
      model: 'gpt2',
      vocabSize: 97,
      nPositions: 24,
      nLayer: 3,
      nHead: 4,
      nEmbd: 32,
      nInner: 80,
    });
    expect(shapes.map((s) => [s.name, s.shape])).toEqual(model.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes.reduce((a, s) => a + numel(s.shape), 0)).toBe(model.numParameters());
    model.dispose();
  });

  it('Llama: untied head, RMSNorm, grouped-query attention', () => {
    const config = {
      vocabSize: 101,
      hiddenSize: 48,
      intermediateSize: 72,
      numHiddenLayers: 2,
      numAttentionHeads: 6,
      numKeyValueHeads: 2,
      maxPositionEmbeddings: 32,
    };
    const model = new Llama(config);
    const shapes = modelParameterShapes({ model: 'llama', ...config });
    expect(shapes.map((s) => [s.name, s.shape])).toEqual(model.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes.reduce((a, s) => a + numel(s.shape), 0)).toBe(model.numParameters());
    model.dispose();
  });
});

describe('model-state formulas (DESIGN.md 6)', () => {
  // One group of 1000 elements (a 2-D weight) and none in the other: no padding for N = 4, 8.
  const parameters = [{ name: 'w', shape: [10, 100] }];
  const psi = 1000;
  const est = (stage: 0 | 1 | 2 | 3, precision: 'fp32' | 'bf16', n = 8, type: 'adamw' | 'sgd' | 'lamb' = 'adamw') =>
    estimateModelStates({ parameters, stage, dataParallelSize: n, precision, optimizer: { type, momentum: 0.9 } })
      .modelStateBytesPerRank;

  it('fp32 Adam: 16Ψ, 8Ψ + 8Ψ/N, 4Ψ + 12Ψ/N, 16Ψ/N', () => {
    expect(est(0, 'fp32').total).toBe(16 * psi);
    expect(est(1, 'fp32')).toEqual({ params: 4 * psi, grads: 4 * psi, optimizer: psi, total: 9 * psi });
    expect(est(2, 'fp32').total).toBe(4 * psi + (12 * psi) / 8);
    expect(est(3, 'fp32').total).toBe((16 * psi) / 8);
  });

  it('amp (bf16) Adam: the ZeRO paper: 16Ψ, 4Ψ + 12Ψ/N, 2Ψ + 14Ψ/N, 16Ψ/N', () => {
    expect(est(0, 'bf16')).toEqual({ params: 2 * psi, grads: 2 * psi, optimizer: 12 * psi, total: 16 * psi });
    expect(est(1, 'bf16').total).toBe(4 * psi + (12 * psi) / 8);
    expect(est(2, 'bf16').total).toBe(2 * psi + (14 * psi) / 8);
    expect(est(3, 'bf16').total).toBe((16 * psi) / 8);
  });

  it('SGD keeps 4Ψ momentum (none without momentum); Lamb is like Adam', () => {
    expect(est(0, 'fp32', 8, 'sgd').optimizer).toBe(4 * psi);
    const noMomentum = estimateModelStates({
      parameters,
      stage: 0,
      dataParallelSize: 1,
      precision: 'fp32',
      optimizer: { type: 'sgd' },
    });
    expect(noMomentum.modelStateBytesPerRank.optimizer).toBe(0);
    expect(noMomentum.formula).toBe('4Ψ + 4Ψ');
    expect(est(2, 'fp32', 8, 'lamb')).toEqual(est(2, 'fp32', 8, 'adamw'));
  });

  it('pads each param group to a multiple of N in stages 1-3, not in stage 0', () => {
    const odd = [
      { name: 'w', shape: [3, 3] },
      { name: 'b', shape: [5] },
    ];
    const run = (stage: 0 | 2) =>
      estimateModelStates({
        parameters: odd,
        stage,
        dataParallelSize: 4,
        precision: 'fp32',
        optimizer: { type: 'adam' },
      });
    expect(run(0).paddedPsi).toBe(14);
    expect(run(2).groups.map((g) => g.paddedSize)).toEqual([12, 8]);
    expect(run(2).modelStateBytesPerRank).toEqual({ params: 80, grads: 20, optimizer: 40, total: 140 });
  });
});

describe('zeroflow estimate', () => {
  it('--json reports Ψ, the formula and bytes per rank; N = world / (tp * pp)', async () => {
    const config = configFile('s1-bf16.json', {
      train_batch_size: 8,
      zero_optimization: { stage: 1 },
      bf16: { enabled: true },
    });
    const r = await cli(
      'estimate',
      ...GPT_ARGS,
      '--seq-len',
      '16',
      '--config',
      config,
      '--world',
      '8',
      '--tp',
      '2',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.psi).toBe(117_504);
    expect(out.dataParallelSize).toBe(4);
    expect(out.formula).toBe('2Ψ + 2Ψ + 12Ψ/N');
    expect(out.modelStateBytesPerRank.total).toBe(4 * out.paddedPsi + (12 * out.paddedPsi) / 4);
  });

  it('prints a table for people', async () => {
    const r = await cli('estimate', ...GPT_ARGS, '--seq-len', '16');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ZeRO stage 0, fp32, adamw/);
    expect(r.stdout).toMatch(/formula: 4Ψ \+ 4Ψ \+ 8Ψ/);
    expect(r.stdout).toMatch(/total\s+1\.79 MiB\s+1880064 B/);
  });

  it('usage errors', async () => {
    expect((await cli('estimate', '--model', 'gpt2')).code).toBe(64);
    expect((await cli('estimate', ...GPT_ARGS)).stderr).toMatch(/missing --seq-len/);
    expect((await cli('estimate', ...GPT_ARGS, '--seq-len', '16', '--world', '3', '--tp', '2')).code).toBe(64);
    expect((await cli('estimate', '--model', 'bert', '--n-layer', '1')).stderr).toMatch(/unknown --model "bert"/);
  });
});

describe('the estimate agrees with memoryReport() of a real 2-rank job (fp32 AdamW)', () => {
  for (const stage of [0, 1, 2]) {
    it(`stage ${stage}: parameters + gradients + optimizer within 1%`, async () => {
      // The fixture's config: GPT 2x64, vocab 256, T 16, AdamW with weight decay, 8 sequences, GAS 2.
      const config = configFile(`fixture-s${stage}.json`, {
        train_batch_size: 8,
        gradient_accumulation_steps: 2,
        optimizer: { type: 'AdamW', params: { lr: 3e-3, weight_decay: 0.01 } },
        zero_optimization: { stage },
      });
      const r = await cli('estimate', ...GPT_ARGS, '--seq-len', '16', '--config', config, '--world', '2', '--json');
      expect(r.code, r.stderr).toBe(0);
      const estimate = JSON.parse(r.stdout);
      // one step of the shared ZeRO fixture on 2 real ranks; each writes its memoryReport()
      const { ranks } = await runZero(2, stage, 1);
      for (const rank of ranks) {
        expect(estimate.psi).toBe(rank.numel);
        const m = rank.memory;
        // gradient buckets are reported under `communication`, not model states
        const grads = m.gradients;
        const measured = { params: m.parameters, grads, optimizer: m.optimizer };
        const predicted = estimate.modelStateBytesPerRank;
        for (const key of ['params', 'grads', 'optimizer'] as const) {
          expect(Math.abs(predicted[key] - measured[key]) / measured[key], key).toBeLessThan(0.01);
        }
        const total = measured.params + measured.grads + measured.optimizer;
        expect(Math.abs(predicted.total - total) / total).toBeLessThan(0.01);
      }
    });
  }
});

describe('with amp, the estimate agrees with memoryReport() of a real 2-rank job', () => {
  const cases: { stage: number; precision: 'fp16' | 'bf16'; gradAccum?: 'fp32' }[] = [];
  for (const precision of ['fp16', 'bf16'] as const) for (const stage of [0, 1, 2]) cases.push({ stage, precision });
  cases.push({ stage: 1, precision: 'bf16', gradAccum: 'fp32' });
  // stage 3: 16-bit parameter and gradient shards, fp32 master shard + moments (16Ψ/N)
  cases.push({ stage: 3, precision: 'bf16' });
  for (const c of cases) {
    const label = `stage ${c.stage}, ${c.precision}${c.gradAccum ? ', grad_accum_dtype fp32' : ''}`;
    it(`${label}: 16-bit parameters and gradients, fp32 masters + moments, each within 1%`, async () => {
      const precision = { [c.precision]: { enabled: true } };
      const dataTypes = c.gradAccum ? { data_types: { grad_accum_dtype: c.gradAccum } } : {};
      // stage 3: every parameter partitioned (small ones would stay whole, outside the model-state formula)
      const zero = c.stage === 3 ? { stage3_param_persistence_threshold: 0 } : {};
      const config = configFile(`fixture-s${c.stage}-${c.precision}${c.gradAccum ?? ''}.json`, {
        train_batch_size: 8,
        gradient_accumulation_steps: 2,
        optimizer: { type: 'AdamW', params: { lr: 3e-3, weight_decay: 0.01 } },
        zero_optimization: { stage: c.stage, ...zero },
        ...precision,
        ...dataTypes,
      });
      const r = await cli('estimate', ...GPT_ARGS, '--seq-len', '16', '--config', config, '--world', '2', '--json');
      expect(r.code, r.stderr).toBe(0);
      const estimate = JSON.parse(r.stdout);
      expect(estimate.bytesPerElement).toEqual({ params: 2, grads: c.gradAccum ? 4 : 2, optimizer: 12 });
      const { ranks } = await runZero(2, c.stage, 1, { config: { ...precision, ...dataTypes }, zero });
      for (const rank of ranks) {
        const m = rank.memory;
        // the optimizer's partition holds the fp32 masters beside the moments: the estimate's 12 B/elem
        const measured = { params: m.parameters, grads: m.gradients, optimizer: m.optimizer + m.masterWeights };
        const predicted = estimate.modelStateBytesPerRank;
        for (const key of ['params', 'grads', 'optimizer'] as const)
          expect(Math.abs(predicted[key] - measured[key]) / measured[key], key).toBeLessThan(0.01);
        const total = measured.params + measured.grads + measured.optimizer;
        expect(Math.abs(predicted.total - total) / total).toBeLessThan(0.01);
      }
    });
  }

  it('the formula shows fp32 gradient accumulation when configured', async () => {
    const config = configFile('s2-bf16-fp32acc.json', {
      train_batch_size: 8,
      zero_optimization: { stage: 2 },
      bf16: { enabled: true },
      data_types: { grad_accum_dtype: 'fp32' },
    });
    const r = await cli('estimate', ...GPT_ARGS, '--seq-len', '16', '--config', config, '--world', '4', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.formula).toBe('2Ψ + 4Ψ/N + 12Ψ/N');
    expect(out.modelStateBytesPerRank.total).toBe(2 * out.paddedPsi + (16 * out.paddedPsi) / 4);
  });
});
