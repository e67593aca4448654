import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue, type ResolveContext, resolveConfig } from '../src/index.js';

/** The ConfigError `resolveConfig` throws for `input` (fails the test when it does not throw one). */
function issuesOf(input: string | Record<string, unknown>, ctx?: ResolveContext): ConfigIssue[] {
  try {
    resolveConfig(input, ctx);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError, but the config resolved');
}

const base = { train_micro_batch_size_per_gpu: 2 };

interface Case {
  name: string;
  config: Record<string, unknown>;
  path: string;
  ruleMatch?: RegExp;
  suggestion?: RegExp;
  ctx?: ResolveContext;
}

const cases: Case[] = [
  { name: 'unknown top-level key', config: { ...base, foo: 1 }, path: 'foo', ruleMatch: /unknown key/ },
  {
    name: 'misspelled top-level key',
    config: { ...base, gradient_cliping: 1 },
    path: 'gradient_cliping',
    suggestion: /did you mean "gradient_clipping"/,
  },
  {
    name: 'nested key at the top level',
    config: { ...base, stage: 2 },
    path: 'stage',
    suggestion: /"stage" is a key of "zero_optimization": move it into that section/,
  },
  {
    name: 'misspelled nested key in zero_optimization',
    config: { ...base, zero_optimization: { stage: 2, overlap_com: true } },
    path: 'zero_optimization.overlap_com',
    suggestion: /"overlap_comm"/,
  },
  {
    name: 'misspelled key in optimizer params',
    config: { ...base, optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decy: 0.1 } } },
    path: 'optimizer.params.weight_decy',
    suggestion: /"weight_decay"/,
  },
  {
    name: 'misspelled key in offload_optimizer',
    config: { ...base, zero_optimization: { stage: 2, offload_optimizer: { devcie: 'cpu' } } },
    path: 'zero_optimization.offload_optimizer.devcie',
    suggestion: /"device"/,
  },
  {
    name: 'batch rule broken',
    config: { train_batch_size: 30, train_micro_batch_size_per_gpu: 4, gradient_accumulation_steps: 2 },
    path: 'train_batch_size',
    ruleMatch: /30 != 4 \* 2 \* 2 = 16/,
    ctx: { worldSize: 2 },
  },
  {
    name: 'batch rule broken after DeepSpeed inference',
    config: { train_batch_size: 10, train_micro_batch_size_per_gpu: 3 },
    path: 'train_batch_size',
    ruleMatch: /gradient_accumulation_steps inferred as floor\(10 \/ 3 \/ 1\) = 3/,
  },
  {
    name: 'inferred accumulation of zero',
    config: { train_batch_size: 4, train_micro_batch_size_per_gpu: 4 },
    path: 'gradient_accumulation_steps',
    ruleMatch: />= 1/,
    ctx: { worldSize: 2 },
  },
  { name: 'no batch size at all', config: { gradient_accumulation_steps: 2 }, path: 'train_micro_batch_size_per_gpu' },
  {
    name: 'non-integer batch',
    config: { train_micro_batch_size_per_gpu: 2.5 },
    path: 'train_micro_batch_size_per_gpu',
  },
  { name: 'zero batch', config: { train_batch_size: 0 }, path: 'train_batch_size', ruleMatch: />= 1/ },
  {
    name: 'fp16 and bf16 both enabled',
    config: { ...base, fp16: { enabled: true }, bf16: { enabled: true } },
    path: 'bf16.enabled',
    ruleMatch: /cannot both be enabled/,
  },
  {
    name: 'bad optimizer type',
    config: { ...base, optimizer: { type: 'Adamax' } },
    path: 'optimizer.type',
    suggestion: /did you mean "Adam"/,
  },
  {
    name: 'negative lr',
    config: { ...base, optimizer: { type: 'adam', params: { lr: -0.1 } } },
    path: 'optimizer.params.lr',
    ruleMatch: /> 0/,
  },
  {
    name: 'lr as a string',
    config: { ...base, optimizer: { type: 'SGD', params: { lr: '0.1' } } },
    path: 'optimizer.params.lr',
    suggestion: /without quotes/,
  },
  {
    name: 'betas out of range',
    config: { ...base, optimizer: { type: 'AdamW', params: { betas: [0.9, 1.0] } } },
    path: 'optimizer.params.betas[1]',
    ruleMatch: /< 1/,
  },
  {
    name: 'betas of wrong length',
    config: { ...base, optimizer: { type: 'Lamb', params: { betas: [0.9] } } },
    path: 'optimizer.params.betas',
  },
  {
    name: 'max_grad_norm in optimizer params',
    config: { ...base, optimizer: { type: 'Adam', params: { max_grad_norm: 1 } } },
    path: 'optimizer.params.max_grad_norm',
    suggestion: /gradient_clipping/,
  },
  {
    name: 'SGD nesterov without momentum',
    config: { ...base, optimizer: { type: 'SGD', params: { nesterov: true } } },
    path: 'optimizer.params.nesterov',
  },
  {
    name: 'bad scheduler param',
    config: { ...base, scheduler: { type: 'WarmupLR', params: { warmup_num_steps: 0 } } },
    path: 'scheduler.params.warmup_num_steps',
  },
  {
    name: 'bad warmup_type',
    config: { ...base, scheduler: { type: 'WarmupDecayLR', params: { total_num_steps: 10, warmup_type: 'cosine' } } },
    path: 'scheduler.params.warmup_type',
  },
  {
    name: 'WarmupDecayLR without total_num_steps',
    config: { ...base, scheduler: { type: 'WarmupDecayLR', params: {} } },
    path: 'scheduler.params.total_num_steps',
    ruleMatch: /required/,
  },
  {
    name: 'OneCycle without its lrs',
    config: { ...base, scheduler: { type: 'OneCycle' } },
    path: 'scheduler.params.cycle_max_lr',
  },
  { name: 'unknown scheduler', config: { ...base, scheduler: { type: 'CosineAnnealing' } }, path: 'scheduler.type' },
  {
    name: 'ZeRO stage 4',
    config: { ...base, zero_optimization: { stage: 4 } },
    path: 'zero_optimization.stage',
    ruleMatch: /from 0 to 3/,
  },
  {
    name: 'wrong type for a boolean',
    config: { ...base, wall_clock_breakdown: 'true' },
    path: 'wall_clock_breakdown',
    suggestion: /without quotes/,
  },
  { name: 'section not an object', config: { ...base, fp16: true }, path: 'fp16', ruleMatch: /must be an object/ },
  {
    name: 'unsupported feature enabled',
    config: { ...base, flops_profiler: { enabled: true } },
    path: 'flops_profiler',
    ruleMatch: /not supported yet by ZeroFlow/,
  },
  {
    name: 'unsupported section without an enabled flag',
    config: { ...base, pipeline: { stages: 2 } },
    path: 'pipeline',
    ruleMatch: /not supported yet/,
  },
  {
    name: 'unsupported ZeRO++ option',
    config: { ...base, zero_optimization: { stage: 3, zero_quantized_weights: true } },
    path: 'zero_optimization.zero_quantized_weights',
    ruleMatch: /not supported yet/,
  },
  {
    name: 'parameter offload below stage 3',
    config: { ...base, zero_optimization: { stage: 2, offload_param: { device: 'cpu' } } },
    path: 'zero_optimization.offload_param.device',
  },
  {
    name: 'nvme offload without a path',
    config: { ...base, zero_optimization: { stage: 3, offload_param: { device: 'nvme' } } },
    path: 'zero_optimization.offload_param.nvme_path',
  },
  {
    name: 'bad offload device',
    config: { ...base, zero_optimization: { stage: 2, offload_optimizer: { device: 'gpu' } } },
    path: 'zero_optimization.offload_optimizer.device',
  },
  {
    name: 'negative gradient clipping',
    config: { ...base, gradient_clipping: -1 },
    path: 'gradient_clipping',
  },
  {
    name: 'bad communication data type',
    config: { ...base, communication_data_type: 'fp8' },
    path: 'communication_data_type',
  },
  {
    name: 'dynamic loss scaling with zero window',
    config: { ...base, fp16: { enabled: true, loss_scale_window: 0 } },
    path: 'fp16.loss_scale_window',
  },
  {
    name: 'alias and canonical key together',
    config: { ...base, zero_optimization: { stage: 3, prefetch_bucket_size: 1, stage3_prefetch_bucket_size: 2 } },
    path: 'zero_optimization.prefetch_bucket_size',
  },
  {
    name: 'auto without default or value',
    config: { ...base, scheduler: { type: 'WarmupCosineLR', params: { total_num_steps: 'auto' } } },
    path: 'scheduler.params.total_num_steps',
    suggestion: /autoValues\["scheduler\.params\.total_num_steps"\]/,
  },
  {
    name: 'bad tag_validation',
    config: { ...base, checkpoint: { tag_validation: 'Crash' } },
    path: 'checkpoint.tag_validation',
  },
  {
    name: 'non-integer number_checkpoints',
    config: { ...base, activation_checkpointing: { number_checkpoints: 1.5 } },
    path: 'activation_checkpointing.number_checkpoints',
  },
];

describe('resolveConfig rejects invalid configs with the key path', () => {
  it.each(cases)('$name', ({ config, path, ruleMatch, suggestion, ctx }) => {
    const issues = issuesOf(config, ctx);
    const issue = issues.find((i) => i.path === path);
    expect(issue, `issues were: ${JSON.stringify(issues)}`).toBeDefined();
    if (ruleMatch) expect(issue!.rule).toMatch(ruleMatch);
    if (suggestion) expect(issue!.suggestion).toMatch(suggestion);
  });

  it('collects every issue into one ConfigError', () => {
    const issues = issuesOf({
      train_batch_size: 7,
      train_micro_batch_size_per_gpu: 2,
      gradient_accumulation_steps: 2,
      optimzer: { type: 'AdamW' },
      zero_optimization: { stage: 5, reduce_bucket_sise: 10 },
      fp16: { enabled: true },
      bf16: { enabled: true },
      wandb: { enabled: true },
    });
    expect(issues.map((i) => i.path).sort()).toEqual(
      [
        'bf16.enabled',
        'optimzer',
        'train_batch_size',
        'wandb',
        'zero_optimization.reduce_bucket_sise',
        'zero_optimization.stage',
      ].sort(),
    );
  });

  it('shows the value and the rule in the message', () => {
    try {
      resolveConfig({ ...base, optimizer: { type: 'AdamW', params: { lr: -1 } } });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('optimizer.params.lr = -1: must be a number > 0');
    }
  });

  it('reports a JSONC syntax error with line and column', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-config-'));
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{\n  // batch\n  "train_batch_size": 8\n  "gradient_clipping": 1.0\n}\n');
    const issues = issuesOf(file);
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe(`${file}:4:3`);
    expect(issues[0].rule).toMatch(/expected ',' or '}'/);
  });

  it('reports a missing file', () => {
    const issues = issuesOf(join(tmpdir(), 'no-such-zeroflow-config.json'));
    expect(issues[0].rule).toMatch(/ENOENT/);
  });

  it('rejects a config that is not an object', () => {
    expect(issuesOf([1, 2] as unknown as Record<string, unknown>)[0].path).toBe('(root)');
  });

  it('rejects a bad context', () => {
    expect(issuesOf(base, { worldSize: 4, dataParallelSize: 3 })[0].path).toBe('(context).dataParallelSize');
  });
});
