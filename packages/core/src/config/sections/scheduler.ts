/**
 * The `scheduler` section: `{ "type": "WarmupLR", "params": {...} }`, with the defaults of the constructors in
 * DeepSpeed's deepspeed/runtime/lr_schedules.py. Stricter than DeepSpeed, an unknown `warmup_type` is an error
 * (DeepSpeed logs a warning and falls back to "log"). The schedulers themselves live in `optim/`.
 */

import { s } from '../schema.js';
import { INVALID, type Infer, type Schema } from '../schema-base.js';
import { validateSection } from './params.js';

const warmupType = () => s.enum(['log', 'linear'], { default: 'log' });
/** DeepSpeed requires a positive integer (and internally uses at least 2). */
const warmupNumSteps = () => s.integer({ min: 1, default: 1000 });
/** Required by WarmupDecayLR and WarmupCosineLR; Hugging Face's Trainer fills "auto" from max_steps. */
const totalNumSteps = () => s.integer({ min: 1 });
const lastBatchIteration = () => s.integer({ min: -1, default: -1 });
const lrValue = () => s.number({ min: 0 });

/**
 * DeepSpeed's `float or list` params (lr_schedules.py `_format_param`): one value for every param group, or a
 * list with one per group. The list's length is checked when the scheduler is built, against its optimizer.
 */
function perGroup(item: Schema<number>): Schema<number | number[]> {
  const expected = `${item.expected()}, or a list of them (one per param group)`;
  return s.custom<number | number[]>(expected, (value, path, state) => {
    if (typeof value === 'number') return item.validate(value, path, state);
    if (!Array.isArray(value) || value.length === 0) {
      state.issue(path, value, `must be ${expected}`);
      return INVALID;
    }
    const out = value.map((v, i) => item.validate(v, `${path}[${i}]`, state));
    return out.includes(INVALID) ? INVALID : (out as number[]);
  });
}
const groupLr = () => perGroup(lrValue());
const groupMomentum = () => perGroup(s.number({ min: 0, lt: 1 }));

const warmupLr = s.object({
  type: s.enum(['WarmupLR']),
  params: s.object({
    warmup_min_lr: groupLr().default(0),
    /** null: each param group's lr (filled in by resolveConfig when the config has an optimizer). */
    warmup_max_lr: groupLr().nullable().default(null),
    warmup_num_steps: warmupNumSteps(),
    warmup_type: warmupType(),
    last_batch_iteration: lastBatchIteration(),
  }),
});

const warmupDecayLr = s.object({
  type: s.enum(['WarmupDecayLR']),
  params: s.object({
    total_num_steps: totalNumSteps(),
    warmup_min_lr: groupLr().default(0),
    warmup_max_lr: groupLr().default(0.001),
    warmup_num_steps: warmupNumSteps(),
    warmup_type: warmupType(),
    last_batch_iteration: lastBatchIteration(),
  }),
});

const warmupCosineLr = s.object({
  type: s.enum(['WarmupCosineLR']),
  params: s.object({
    total_num_steps: totalNumSteps(),
    warmup_min_ratio: s.number({ min: 0, max: 1, default: 0 }),
    warmup_num_steps: warmupNumSteps(),
    cos_min_ratio: s.number({ min: 0, max: 1, default: 0.0001 }),
    warmup_type: warmupType(),
    last_batch_iteration: lastBatchIteration(),
  }),
});

const oneCycle = s.object({
  type: s.enum(['OneCycle']),
  params: s.object(
    {
      cycle_min_lr: groupLr(),
      cycle_max_lr: groupLr(),
      decay_lr_rate: s.number({ min: 0, default: 0 }),
      cycle_first_step_size: s.integer({ min: 1, default: 2000 }),
      /** null: same as cycle_first_step_size (filled in). */
      cycle_second_step_size: s.integer({ min: 0 }).nullable().default(null),
      cycle_first_stair_count: s.integer({ min: 0, default: 0 }),
      /** null: same as cycle_first_stair_count (filled in). */
      cycle_second_stair_count: s.integer({ min: 0 }).nullable().default(null),
      decay_step_size: s.integer({ min: 0, default: 0 }),
      cycle_momentum: s.boolean({ default: true }),
      cycle_min_mom: groupMomentum().default(0.8),
      cycle_max_mom: groupMomentum().default(0.9),
      decay_mom_rate: s.number({ min: 0, default: 0 }),
      last_batch_iteration: lastBatchIteration(),
    },
    {
      refine(p) {
        // DeepSpeed's OneCycle derives the second half from the first when it is not given.
        p.cycle_second_step_size ??= p.cycle_first_step_size;
        p.cycle_second_stair_count ??= p.cycle_first_stair_count;
      },
    },
  ),
});

const lrRangeTest = s.object({
  type: s.enum(['LRRangeTest']),
  params: s.object({
    lr_range_test_min_lr: groupLr().default(1e-3),
    lr_range_test_step_size: s.integer({ min: 1, default: 2000 }),
    lr_range_test_step_rate: s.number({ gt: 0, default: 1.0 }),
    lr_range_test_staircase: s.boolean({ default: false }),
    last_batch_iteration: lastBatchIteration(),
  }),
});

/** Scheduler names ZeroFlow implements (DeepSpeed's lr_schedules.VALID_LR_SCHEDULES). */
export const SCHEDULER_TYPES = ['WarmupLR', 'WarmupDecayLR', 'WarmupCosineLR', 'OneCycle', 'LRRangeTest'] as const;
export type SchedulerType = (typeof SCHEDULER_TYPES)[number];

/** Schema of the `scheduler` section (null when absent). */
export const schedulerSchema = s
  .tagged(
    'type',
    {
      WarmupLR: warmupLr,
      WarmupDecayLR: warmupDecayLr,
      WarmupCosineLR: warmupCosineLr,
      OneCycle: oneCycle,
      LRRangeTest: lrRangeTest,
    },
    { caseInsensitive: true },
  )
  .nullable()
  .default(null);

/** Resolved `scheduler` section, a union tagged by `type`. */
export type SchedulerConfig = NonNullable<Infer<typeof schedulerSchema>>;

/** The resolved `params` of scheduler type `T`. */
export type SchedulerParamsOf<T extends SchedulerType> = Extract<SchedulerConfig, { type: T }>['params'];

/**
 * Validates a scheduler's `params` with the `scheduler` section schema and fills DeepSpeed's defaults, as
 * resolveConfig does for a config file (createScheduler and the scheduler constructors call this for params
 * passed to them directly).
 *
 * @param type a scheduler type, any case; the result has the canonical spelling
 * @throws ConfigError naming every bad key (`scheduler.params.<key>`), its value and the rule
 */
export function resolveSchedulerSection(type: string, params: object = {}): SchedulerConfig {
  return validateSection(schedulerSchema, 'scheduler', type, params);
}

/** {@link resolveSchedulerSection} for a known type, typed by it. */
export function resolveSchedulerParams<T extends SchedulerType>(type: T, params: object = {}): SchedulerParamsOf<T> {
  return resolveSchedulerSection(type, params).params as SchedulerParamsOf<T>;
}
