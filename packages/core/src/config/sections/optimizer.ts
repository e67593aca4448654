/**
 * The `optimizer` section: `{ "type": "AdamW", "params": {...} }`. Defaults follow what DeepSpeed actually
 * constructs: FusedAdam / FusedLamb (deepspeed/ops) and torch.optim.SGD, with DeepSpeed's rule that type "Adam"
 * means AdamW unless `adam_w_mode: false` (runtime/engine.py `_configure_basic_optimizer`). ZeroFlow's
 * optimizers themselves live in `optim/`; this file only validates and resolves their config.
 */

import { s } from '../schema.js';
import type { Infer } from '../schema-base.js';
import { validateSection } from './params.js';

const MAX_GRAD_NORM_HINT =
  'DeepSpeed rejects max_grad_norm as an optimizer parameter: use the top-level "gradient_clipping" instead';

/** Learning rate: DeepSpeed's and torch's default is 1e-3. Hugging Face's Trainer fills "auto" from its args. */
const lr = () => s.number({ gt: 0, default: 1e-3 });
const beta = s.number({ min: 0, lt: 1 });
const betas = () => s.tuple<[number, number]>([beta, beta]).default([0.9, 0.999]);
const eps = () => s.number({ gt: 0, default: 1e-8 });
const weightDecay = () => s.number({ min: 0, default: 0 });
const amsgrad = () => s.onlyDefault(s.boolean({ default: false }), 'AMSGrad');

/** Adam and AdamW share FusedAdam's parameters. */
function adamParams() {
  return s.object(
    {
      lr: lr(),
      betas: betas(),
      eps: eps(),
      weight_decay: weightDecay(),
      bias_correction: s.boolean({ default: true }),
      adam_w_mode: s.boolean({ default: true }),
      torch_adam: s.boolean({ default: false }),
      amsgrad: amsgrad(),
    },
    { hints: { max_grad_norm: MAX_GRAD_NORM_HINT } },
  );
}

/** Which spelling of Adam the section used: decides the effective `adam_w_mode`. */
function adamSection<const N extends 'Adam' | 'AdamW'>(name: N) {
  return s.object(
    { type: s.enum([name]), params: adamParams(), legacy_fusion: legacyFusion() },
    {
      refine(section, { raw }) {
        const p = section.params;
        // DeepSpeed: "AdamW" is always decoupled weight decay; "Adam" is too unless adam_w_mode is false.
        p.adam_w_mode = name === 'AdamW' || p.adam_w_mode;
        // With torch_adam, DeepSpeed builds torch.optim.AdamW, whose own weight_decay default is 1e-2.
        const rawParams = (raw.params ?? {}) as Record<string, unknown>;
        const weightDecayGiven = rawParams.weight_decay !== undefined && rawParams.weight_decay !== 'auto';
        if (p.torch_adam && p.adam_w_mode && !weightDecayGiven) p.weight_decay = 0.01;
      },
    },
  );
}

/** `legacy_fusion` selects DeepSpeed's old fused fp16 optimizer; ZeroFlow has one code path. */
const legacyFusion = () => s.onlyDefault(s.boolean({ default: false }), 'optimizer.legacy_fusion');

const sgdSection = s.object(
  {
    type: s.enum(['SGD']),
    params: s.object(
      {
        lr: lr(),
        momentum: s.number({ min: 0, default: 0 }),
        dampening: s.number({ default: 0 }),
        weight_decay: weightDecay(),
        nesterov: s.boolean({ default: false }),
        maximize: s.onlyDefault(s.boolean({ default: false }), 'SGD maximize'),
      },
      {
        hints: { max_grad_norm: MAX_GRAD_NORM_HINT },
        refine(p, { issue }) {
          // torch.optim.SGD refuses Nesterov without momentum or with dampening.
          if (p.nesterov && (p.momentum <= 0 || p.dampening !== 0)) {
            issue(
              'nesterov',
              true,
              'Nesterov momentum needs momentum > 0 and dampening = 0',
              'set "momentum" (e.g. 0.9)',
            );
          }
        },
      },
    ),
    legacy_fusion: legacyFusion(),
  },
  {},
);

const lambSection = s.object({
  type: s.enum(['Lamb']),
  params: s.object(
    {
      lr: lr(),
      betas: betas(),
      eps: eps(),
      weight_decay: weightDecay(),
      bias_correction: s.boolean({ default: true }),
      // Implemented by optim/lamb.ts (eps under the square root), as FusedLamb's flag.
      eps_inside_sqrt: s.boolean({ default: false }),
      // FusedLamb clamps the trust ratio to [min_coeff, max_coeff].
      max_coeff: s.number({ gt: 0, default: 10.0 }),
      min_coeff: s.number({ min: 0, default: 0.01 }),
      amsgrad: amsgrad(),
    },
    {
      hints: { max_grad_norm: MAX_GRAD_NORM_HINT },
      refine(p, { issue }) {
        if (p.min_coeff > p.max_coeff) {
          issue('min_coeff', p.min_coeff, `must be <= max_coeff (${p.max_coeff})`);
        }
      },
    },
  ),
  legacy_fusion: legacyFusion(),
});

/** Optimizer names ZeroFlow implements (matched case-insensitively, like DeepSpeed's "adam"/"adamw"/"lamb"). */
export const OPTIMIZER_TYPES = ['Adam', 'AdamW', 'SGD', 'Lamb'] as const;
export type OptimizerType = (typeof OPTIMIZER_TYPES)[number];

/** Schema of the `optimizer` section (null when absent: the caller passes its own optimizer). */
export const optimizerSchema = s
  .tagged(
    'type',
    { Adam: adamSection('Adam'), AdamW: adamSection('AdamW'), SGD: sgdSection, Lamb: lambSection },
    {
      caseInsensitive: true,
    },
  )
  .nullable()
  .default(null);

/** Resolved `optimizer` section. For Adam/AdamW, `params.adam_w_mode` is the effective mode. */
export type OptimizerConfig = NonNullable<Infer<typeof optimizerSchema>>;

/**
 * Validates an optimizer's `params` with the `optimizer` section schema and fills DeepSpeed's defaults, as
 * resolveConfig does for a config file (createOptimizer calls this for params passed to it directly).
 *
 * @param type `Adam`, `AdamW`, `SGD` or `Lamb`, any case; the result has the canonical spelling
 * @throws ConfigError naming every bad key (`optimizer.params.<key>`), its value and the rule
 */
export function resolveOptimizerSection(type: string, params: object = {}): OptimizerConfig {
  return validateSection(optimizerSchema, 'optimizer', type, params);
}
