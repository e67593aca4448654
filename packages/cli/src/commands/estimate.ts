/**
 * `zeroflow estimate`: the per-rank model-state memory (parameters, gradients, optimizer state) of a
 * `@zeroflow/models` model under a config's ZeRO stage, precision and optimizer, before anything runs
 * (DESIGN.md section 6).
 */
import { parseArgs } from 'node:util';
import { ConfigError, formatConfigIssue, type ResolvedConfig, resolveConfig } from '@zeroflow/core';
import { type CliIO, type Command, EXIT, UsageError } from '../command.js';
import { type ModelShapeSpec, modelParameterShapes } from '../estimate/model-shapes.js';
import {
  estimateModelStates,
  type ModelStateEstimate,
  type OptimizerStateSpec,
  type StatePrecision,
} from '../estimate/model-states.js';

const USAGE = `Usage: zeroflow estimate --model gpt2|llama --n-layer L --n-embd E --n-head H --vocab V
                         [--seq-len T] [--n-kv-head K] [--intermediate I] [--n-inner I]
                         [--config ds.json] [--world N] [--tp N] [--pp N] [--json]

Prints the model-state bytes per rank (parameters, gradients, optimizer state) that the config's ZeRO
stage, precision (fp16/bf16 = amp with fp32 master weights) and optimizer give for the model, laid out
as the engine lays it out (param groups padded to a multiple of the data-parallel size). Under fp16/bf16,
gradients count 2 bytes unless data_types.grad_accum_dtype is "fp32". At stage 3 everything is 1/N
(16Ψ/N with Adam, fp32 or amp); parameters small enough to stay whole on every rank
(stage3_param_persistence_threshold: 4 bytes each, 2 under amp) are not included. Activations and
communication buffers are not model states and are not included.

Model (the @zeroflow/models classes):
  --model NAME       gpt2 (tied head, learned positions) or llama (untied head, RMSNorm, GQA)
  --n-layer L        transformer blocks
  --n-embd E         hidden size
  --n-head H         attention heads
  --vocab V          vocabulary size
  --seq-len T        context length (gpt2: the learned position table; required for gpt2)
  --n-inner I        gpt2 MLP width (default 4E)
  --n-kv-head K      llama key/value heads (default H)
  --intermediate I   llama MLP width (required for llama)
  --tie-embeddings   llama: tie lm_head to the embeddings

Job:
  --config FILE      DeepSpeed-style config (default: stage 0, fp32, AdamW)
  --world N          ranks (default 1)
  --tp N, --pp N     tensor / pipeline parallel sizes: N = world / (tp * pp) data-parallel ranks (default 1)
  --json             print one JSON object
  -h, --help         show this help`;

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        model: { type: 'string' },
        'n-layer': { type: 'string' },
        'n-embd': { type: 'string' },
        'n-head': { type: 'string' },
        vocab: { type: 'string' },
        'seq-len': { type: 'string' },
        'n-inner': { type: 'string' },
        'n-kv-head': { type: 'string' },
        intermediate: { type: 'string' },
        'tie-embeddings': { type: 'boolean', default: false },
        config: { type: 'string' },
        world: { type: 'string' },
        tp: { type: 'string' },
        pp: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type Values = ReturnType<typeof parse>['values'];

function positive(values: Values, flag: keyof Values, required: true): number;
function positive(values: Values, flag: keyof Values, required: false): number | undefined;
function positive(values: Values, flag: keyof Values, required: boolean): number | undefined {
  const text = values[flag];
  if (text === undefined) {
    if (required) throw new UsageError(`missing --${flag}`);
    return undefined;
  }
  const value = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${flag} must be a positive integer, got "${String(text)}"`);
  }
  return value;
}

function modelSpec(values: Values): ModelShapeSpec {
  if (values.model !== 'gpt2' && values.model !== 'llama') {
    throw new UsageError(
      values.model === undefined ? 'missing --model (gpt2 or llama)' : `unknown --model "${values.model}"`,
    );
  }
  const nLayer = positive(values, 'n-layer', true);
  const nEmbd = positive(values, 'n-embd', true);
  const nHead = positive(values, 'n-head', true);
  const vocabSize = positive(values, 'vocab', true);
  if (nEmbd % nHead !== 0) throw new UsageError(`--n-embd (${nEmbd}) must be divisible by --n-head (${nHead})`);
  if (values.model === 'gpt2') {
    return {
      model: 'gpt2',
      vocabSize,
      nPositions: positive(values, 'seq-len', true),
      nEmbd,
      nLayer,
      nHead,
      nInner: positive(values, 'n-inner', false),
    };
  }
  const kv = positive(values, 'n-kv-head', false) ?? nHead;
  if (nHead % kv !== 0) throw new UsageError(`--n-kv-head (${kv}) must divide --n-head (${nHead})`);
  positive(values, 'seq-len', false); // RoPE has no parameters: accepted, checked, not counted
  return {
    model: 'llama',
    vocabSize,
    hiddenSize: nEmbd,
    intermediateSize: positive(values, 'intermediate', true),
    numHiddenLayers: nLayer,
    numAttentionHeads: nHead,
    numKeyValueHeads: kv,
    tieWordEmbeddings: values['tie-embeddings'],
  };
}

function precisionOf(config: ResolvedConfig): StatePrecision {
  if (config.fp16.enabled) return 'fp16';
  if ((config.bf16 as { enabled?: boolean }).enabled) return 'bf16';
  return 'fp32';
}

/**
 * Under amp, gradients are 16-bit unless `data_types.grad_accum_dtype` is `fp32` (DeepSpeed's key): then the
 * owners accumulate fp32 gradients, 4 bytes per element in the same place (full, or 1/N at stage >= 2).
 */
function withGradAccumDtype(e: ModelStateEstimate, config: ResolvedConfig): ModelStateEstimate {
  if (e.precision === 'fp32' || config.data_types.grad_accum_dtype !== 'fp32') return e;
  const b = e.modelStateBytesPerRank;
  const factor = 4 / e.bytesPerElement.grads;
  const grads = b.grads * factor;
  const per = { ...e.bytesPerElement, grads: 4 };
  const formula = e.formula.replace(new RegExp(`^(\\d+Ψ(?:/N)?) \\+ ${e.bytesPerElement.grads}Ψ`), `$1 + 4Ψ`);
  return {
    ...e,
    bytesPerElement: per,
    formula,
    modelStateBytesPerRank: { ...b, grads, total: b.params + grads + b.optimizer },
  };
}

function optimizerOf(config: ResolvedConfig): OptimizerStateSpec {
  const type = (config.optimizer?.type ?? 'AdamW').toLowerCase();
  if (type === 'sgd') {
    const params = (config.optimizer?.params ?? {}) as { momentum?: number };
    return { type: 'sgd', momentum: Number(params.momentum ?? 0) };
  }
  if (type === 'adam' || type === 'adamw' || type === 'lamb') return { type };
  throw new UsageError(`no estimate for optimizer "${config.optimizer?.type}"`);
}

/** Bytes as a short binary-prefixed string: `1.50 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${value.toFixed(2)} ${units[i]}`;
}

function table(e: ModelStateEstimate, worldSize: number): string {
  const b = e.modelStateBytesPerRank;
  const rows: [string, number, string][] = [
    ['parameters', b.params, `${e.bytesPerElement.params} B/elem${e.stage >= 3 ? ' / N' : ''}`],
    ['gradients', b.grads, `${e.bytesPerElement.grads} B/elem${e.stage >= 2 ? ' / N' : ''}`],
    [
      'optimizer',
      b.optimizer,
      `${e.bytesPerElement.optimizer} B/elem${e.stage >= 1 ? ' / N' : ''}${e.precision !== 'fp32' ? ' (fp32 master weights + moments)' : ''}`,
    ],
    ['total', b.total, ''],
  ];
  const lines = rows.map(([name, bytes, note]) =>
    `  ${name.padEnd(11)} ${formatBytes(bytes).padStart(11)} ${String(bytes).padStart(16)} B  ${note}`.trimEnd(),
  );
  return `Model states per rank: ZeRO stage ${e.stage}, ${e.precision}, ${e.optimizer}, world ${worldSize}, N = ${e.dataParallelSize} data-parallel ranks
Ψ = ${e.psi.toLocaleString('en-US')} parameters (${e.groups.map((g) => `${g.name} ${g.size}${g.paddedSize !== g.size ? ` padded to ${g.paddedSize}` : ''}`).join(', ')})
formula: ${e.formula}
${lines.join('\n')}
`;
}

async function run(args: string[], io: CliIO): Promise<number> {
  const { values } = parse(args);
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  const spec = modelSpec(values);
  const worldSize = positive(values, 'world', false) ?? 1;
  const tp = positive(values, 'tp', false) ?? 1;
  const pp = positive(values, 'pp', false) ?? 1;
  if (worldSize % (tp * pp) !== 0) throw new UsageError(`--tp * --pp (${tp * pp}) must divide --world (${worldSize})`);
  const dataParallelSize = worldSize / (tp * pp);

  let config: ResolvedConfig;
  try {
    const hiddenSize = spec.model === 'gpt2' ? spec.nEmbd : spec.hiddenSize;
    config = resolveConfig(values.config ?? { train_micro_batch_size_per_gpu: 1 }, {
      worldSize,
      dataParallelSize,
      hiddenSize,
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr(`${values.config}: invalid config:\n`);
    for (const issue of err.issues) io.stderr(`  ${formatConfigIssue(issue)}\n`);
    return EXIT.invalidInput;
  }

  const estimate = withGradAccumDtype(
    estimateModelStates({
      parameters: modelParameterShapes(spec),
      stage: config.zero_optimization.stage as 0 | 1 | 2 | 3,
      dataParallelSize,
      precision: precisionOf(config),
      optimizer: optimizerOf(config),
    }),
    config,
  );
  if (values.json) {
    io.stdout(`${JSON.stringify({ model: spec, worldSize, tp, pp, ...estimate }, null, 2)}\n`);
  } else {
    io.stdout(table(estimate, worldSize));
  }
  return EXIT.ok;
}

/** The `estimate` command. */
export const estimateCommand: Command = {
  path: ['estimate'],
  summary: 'per-rank model-state memory of a model under a config, before anything runs',
  usage: USAGE,
  run,
};
