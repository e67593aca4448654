import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  inferBatchSizes,
  PluginError,
  requiredPluginPackages,
  resolveConfig,
  s,
  zeroOptimizationSchema,
} from '../src/index.js';

const base = { train_micro_batch_size_per_gpu: 2 };

describe('resolveConfig fills DeepSpeed defaults', () => {
  it('resolves a minimal config', () => {
    const c = resolveConfig(base);
    expect(c.train_batch_size).toBe(2);
    expect(c.gradient_accumulation_steps).toBe(1);
    expect(c.optimizer).toBeNull();
    expect(c.scheduler).toBeNull();
    // DeepSpeed v0.19.5 code defaults (constants.py), not the older docs.
    expect(c.gradient_clipping).toBe(1.0);
    expect(c.steps_per_print).toBeNull();
    expect(c.seed).toBe(42);
    expect(c.gradient_predivide_factor).toBe(1.0);
    expect(c.communication_data_type).toBeNull();
    expect(c.zero_optimization.stage).toBe(0);
    expect(c.zero_optimization.reduce_bucket_size).toBe(5e8);
    expect(c.zero_optimization.stage3_prefetch_bucket_size).toBe(5e7);
    expect(c.zero_optimization.stage3_param_persistence_threshold).toBe(1e5);
    expect(c.zero_optimization.overlap_comm).toBe(false);
    expect(c.fp16).toMatchObject({ enabled: false, loss_scale: 0, initial_scale_power: 16, loss_scale_window: 1000 });
    expect(c.fp16).toMatchObject({ hysteresis: 2, consecutive_hysteresis: false, min_loss_scale: 1 });
    expect(c.bf16.enabled).toBe(false);
    expect(c.csv_monitor).toEqual({ enabled: false, output_path: '', job_name: 'DeepSpeedJobName' });
    expect(c.comms_logger).toEqual({ enabled: false, prof_all: true, prof_ops: [], verbose: false, debug: false });
    expect(c.activation_checkpointing.number_checkpoints).toBeNull();
    expect(c.checkpoint.tag_validation).toBe('WARN');
    expect(c.data_types.grad_accum_dtype).toBeNull();
    // Unsupported sections are left out of the resolved config.
    expect('tensorboard' in c).toBe(false);
  });

  it('gives every resolved config its own default arrays', () => {
    const a = resolveConfig({ ...base, optimizer: { type: 'Adam' } });
    const b = resolveConfig({ ...base, optimizer: { type: 'Adam' } });
    const betas = (a.optimizer!.params as { betas: number[] }).betas;
    betas[0] = 0.5;
    expect((b.optimizer!.params as { betas: number[] }).betas[0]).toBe(0.9);
  });

  it('resolves optimizer types case-insensitively with DeepSpeed/torch defaults', () => {
    const adam = resolveConfig({ ...base, optimizer: { type: 'adam' } }).optimizer!;
    expect(adam).toEqual({
      type: 'Adam',
      params: {
        lr: 1e-3,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay: 0,
        bias_correction: true,
        adam_w_mode: true,
        torch_adam: false,
        amsgrad: false,
      },
      legacy_fusion: false,
    });
    const sgd = resolveConfig({ ...base, optimizer: { type: 'sgd', params: { lr: 0.1, momentum: 0.9 } } }).optimizer!;
    expect(sgd).toMatchObject({ type: 'SGD', params: { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false } });
    const lamb = resolveConfig({ ...base, optimizer: { type: 'LAMB' } }).optimizer!;
    expect(lamb).toMatchObject({ type: 'Lamb', params: { max_coeff: 10, min_coeff: 0.01, bias_correction: true } });
  });

  it("applies DeepSpeed's Adam/AdamW mode rule", () => {
    const mode = (type: string, params: Record<string, unknown>) =>
      (resolveConfig({ ...base, optimizer: { type, params } }).optimizer!.params as { adam_w_mode: boolean })
        .adam_w_mode;
    expect(mode('Adam', {})).toBe(true); // "Adam" means AdamW by default
    expect(mode('Adam', { adam_w_mode: false })).toBe(false); // classic Adam with L2
    expect(mode('AdamW', { adam_w_mode: false })).toBe(true); // AdamW is always decoupled
    // torch_adam builds torch.optim.AdamW, whose weight_decay default is 0.01.
    const torchAdamW = resolveConfig({ ...base, optimizer: { type: 'AdamW', params: { torch_adam: true } } });
    expect((torchAdamW.optimizer!.params as { weight_decay: number }).weight_decay).toBe(0.01);
  });

  it('fills scheduler defaults from lr_schedules.py and WarmupLR max from the optimizer', () => {
    const c = resolveConfig({
      ...base,
      optimizer: { type: 'AdamW', params: { lr: 5e-4 } },
      scheduler: { type: 'warmuplr' },
    });
    expect(c.scheduler).toEqual({
      type: 'WarmupLR',
      params: {
        warmup_min_lr: 0,
        warmup_max_lr: 5e-4,
        warmup_num_steps: 1000,
        warmup_type: 'log',
        last_batch_iteration: -1,
      },
    });
    const cosine = resolveConfig({ ...base, scheduler: { type: 'WarmupCosineLR', params: { total_num_steps: 100 } } });
    expect(cosine.scheduler!.params).toMatchObject({
      warmup_min_ratio: 0,
      cos_min_ratio: 0.0001,
      warmup_num_steps: 1000,
    });
    const cycle = resolveConfig({
      ...base,
      scheduler: { type: 'OneCycle', params: { cycle_min_lr: 1e-4, cycle_max_lr: 1e-3, cycle_first_step_size: 50 } },
    });
    expect(cycle.scheduler!.params).toMatchObject({
      cycle_second_step_size: 50,
      cycle_second_stair_count: 0,
      cycle_momentum: true,
      cycle_min_mom: 0.8,
      cycle_max_mom: 0.9,
    });
    const rangeTest = resolveConfig({ ...base, scheduler: { type: 'LRRangeTest' } });
    expect(rangeTest.scheduler!.params).toEqual({
      lr_range_test_min_lr: 1e-3,
      lr_range_test_step_size: 2000,
      lr_range_test_step_rate: 1,
      lr_range_test_staircase: false,
      last_batch_iteration: -1,
    });
  });

  it('fills ZeRO derived defaults and DeepSpeed aliases', () => {
    const c = resolveConfig({
      ...base,
      zero_optimization: {
        stage: 3,
        prefetch_bucket_size: 1000,
        stage3_gather_fp16_weights_on_model_save: true,
        cpu_offload: true,
      },
    });
    const z = c.zero_optimization;
    expect(z.overlap_comm).toBe(true); // stage 3's dynamic default
    expect(z.stage3_prefetch_bucket_size).toBe(1000);
    expect(z.stage3_gather_16bit_weights_on_model_save).toBe(true);
    expect(z.offload_optimizer).toMatchObject({ device: 'cpu', pin_memory: true, buffer_count: 4, ratio: 1 });
    expect('prefetch_bucket_size' in z).toBe(false);
  });

  it('accepts the old bfloat16 name and canonical-cases enums', () => {
    const c = resolveConfig({ ...base, bfloat16: { enabled: true }, checkpoint: { tag_validation: 'fail' } });
    expect(c.bf16.enabled).toBe(true);
    expect(c.checkpoint.tag_validation).toBe('FAIL');
  });

  it('accepts unsupported features when disabled', () => {
    const c = resolveConfig({
      ...base,
      tensorboard: { enabled: false, output_path: 'x' },
      wandb: {},
      aio: null,
      flops_profiler: { enabled: false },
    });
    expect(c.train_batch_size).toBe(2);
  });
});

describe('batch rule', () => {
  const infer = (tb: number | null, mb: number | null, gas: number | null, dp: number) =>
    inferBatchSizes({ train_batch_size: tb, train_micro_batch_size_per_gpu: mb, gradient_accumulation_steps: gas }, dp);

  it('infers the third of three like DeepSpeed', () => {
    expect(infer(64, 4, null, 4).value).toEqual({
      train_batch_size: 64,
      train_micro_batch_size_per_gpu: 4,
      gradient_accumulation_steps: 4,
    });
    expect(infer(64, null, 2, 4).value).toEqual({
      train_batch_size: 64,
      train_micro_batch_size_per_gpu: 8,
      gradient_accumulation_steps: 2,
    });
    expect(infer(null, 4, 3, 2).value).toEqual({
      train_batch_size: 24,
      train_micro_batch_size_per_gpu: 4,
      gradient_accumulation_steps: 3,
    });
  });

  it('handles the only-one-given cases like DeepSpeed', () => {
    expect(infer(32, null, null, 4).value).toEqual({
      train_batch_size: 32,
      train_micro_batch_size_per_gpu: 8,
      gradient_accumulation_steps: 1,
    });
    expect(infer(null, 5, null, 3).value).toEqual({
      train_batch_size: 15,
      train_micro_batch_size_per_gpu: 5,
      gradient_accumulation_steps: 1,
    });
    expect(infer(null, null, 4, 1).issues[0].rule).toMatch(/either train_batch_size or train_micro_batch_size_per_gpu/);
  });

  it('rejects a train batch that the data-parallel size does not divide', () => {
    const r = infer(30, null, null, 4);
    expect(r.value).toBeUndefined();
    expect(r.issues[0].rule).toContain('30 != 7 * 1 * 4 = 28');
  });

  it('uses dataParallelSize, not worldSize, from the context', () => {
    const c = resolveConfig(
      { train_batch_size: 16, train_micro_batch_size_per_gpu: 4 },
      { worldSize: 8, dataParallelSize: 2 },
    );
    expect(c.gradient_accumulation_steps).toBe(2);
  });
});

describe('"auto" values', () => {
  it('take autoValues, then context resolvers, then defaults', () => {
    const c = resolveConfig(
      {
        train_batch_size: 'auto',
        train_micro_batch_size_per_gpu: 'auto',
        gradient_accumulation_steps: 'auto',
        gradient_clipping: 'auto',
        optimizer: { type: 'AdamW', params: { lr: 'auto', betas: 'auto', eps: 'auto', weight_decay: 'auto' } },
        scheduler: { type: 'WarmupDecayLR', params: { total_num_steps: 'auto', warmup_num_steps: 'auto' } },
        fp16: { enabled: 'auto' },
        bf16: { enabled: 'auto' },
        zero_optimization: {
          stage: 3,
          reduce_bucket_size: 'auto',
          stage3_prefetch_bucket_size: 'auto',
          stage3_param_persistence_threshold: 'auto',
        },
      },
      {
        worldSize: 2,
        hiddenSize: 1024,
        autoValues: {
          train_micro_batch_size_per_gpu: 8,
          gradient_accumulation_steps: 2,
          'optimizer.params.lr': 3e-4,
          'optimizer.params.weight_decay': 0.1,
          'scheduler.params.total_num_steps': 5000,
          'bf16.enabled': true,
        },
      },
    );
    expect(c.train_batch_size).toBe(32); // inferred: 8 * 2 * 2
    expect(c.gradient_clipping).toBe(1.0);
    expect(c.optimizer!.params).toMatchObject({ lr: 3e-4, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.1 });
    expect(c.scheduler!.params).toMatchObject({ total_num_steps: 5000, warmup_num_steps: 1000 });
    expect(c.fp16.enabled).toBe(false);
    expect(c.bf16.enabled).toBe(true);
    expect(c.zero_optimization.reduce_bucket_size).toBe(1024 * 1024);
    expect(c.zero_optimization.stage3_prefetch_bucket_size).toBe(Math.floor(0.9 * 1024 * 1024));
    expect(c.zero_optimization.stage3_param_persistence_threshold).toBe(10240);
  });

  it('validates autoValues like written values', () => {
    expect(() =>
      resolveConfig({ ...base, gradient_clipping: 'auto' }, { autoValues: { gradient_clipping: -2 } }),
    ).toThrow(ConfigError);
  });
});

describe('files with comments', () => {
  it('reads JSONC files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-config-'));
    const file = join(dir, 'ds_config.json');
    writeFileSync(
      file,
      `{
  // DeepSpeed config with comments
  "train_batch_size": 16, /* global */
  "train_micro_batch_size_per_gpu": 4,
  "zero_optimization": { "stage": 2, "offload_optimizer": { "device": "nvme", "nvme_path": "//mnt/nvme" }, },
}`,
    );
    const c = resolveConfig(file, { worldSize: 2 });
    expect(c.gradient_accumulation_steps).toBe(2);
    expect(c.zero_optimization.offload_optimizer!.nvme_path).toBe('//mnt/nvme');
  });
});

describe('plugin sections and required plugins', () => {
  it('lets a plugin schema own a section instead of core', () => {
    const schema = s.object({
      stage: s.integer({ min: 2, max: 2, default: 2 }),
      bucket_mb: s.integer({ default: 25 }),
    });
    const c = resolveConfig(
      { ...base, zero_optimization: { stage: 2 } },
      { pluginSections: [{ key: 'zero_optimization', schema, owner: '@zeroflow/zero-stage2' }] },
    );
    expect(c.zero_optimization).toEqual({ stage: 2, bucket_mb: 25 });
    // The plugin's schema decides what is unknown.
    expect(() =>
      resolveConfig(
        { ...base, zero_optimization: { stage: 2, reduce_bucket_size: 5 } },
        { pluginSections: [{ key: 'zero_optimization', schema, owner: 'p' }] },
      ),
    ).toThrow(/zero_optimization.reduce_bucket_size/);
  });

  it('lets a plugin own an unsupported or new key', () => {
    const schema = s.object({ stages: s.integer({ min: 1, default: 1 }) });
    const c = resolveConfig(
      { ...base, pipeline: { stages: 2 } },
      { pluginSections: [{ key: 'pipeline', schema, owner: 'pp' }] },
    );
    expect(c.pipeline).toEqual({ stages: 2 });
  });

  it('refuses two owners of one section', () => {
    const schema = s.object({});
    expect(() =>
      resolveConfig(base, {
        pluginSections: [
          { key: 'fp16', schema, owner: 'a' },
          { key: 'fp16', schema, owner: 'b' },
        ],
      }),
    ).toThrow(PluginError);
  });

  it('names the packages a config needs', () => {
    const c = resolveConfig({
      ...base,
      bf16: { enabled: true },
      zero_optimization: { stage: 3, offload_param: { device: 'nvme', nvme_path: '/nvme' } },
    });
    expect(requiredPluginPackages(c).map((p) => p.package)).toEqual([
      '@zeroflow/zero-stage3',
      '@zeroflow/amp',
      '@zeroflow/offload-nvme',
    ]);
    expect(requiredPluginPackages(resolveConfig(base))).toEqual([]);
    // Raw configs work too, and "auto" enables nothing.
    expect(requiredPluginPackages({ fp16: { enabled: 'auto' }, zero_optimization: { stage: 1 } })).toEqual([
      { package: '@zeroflow/zero-stage1', reason: 'zero_optimization.stage is 1' },
    ]);
  });

  it('exports the built-in ZeRO schema for plugins to extend', () => {
    expect(zeroOptimizationSchema.knownKeys()).toContain('stage3_max_live_parameters');
  });
});
