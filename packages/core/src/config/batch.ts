/**
 * DeepSpeed's batch-size rule: train_batch_size = train_micro_batch_size_per_gpu * gradient_accumulation_steps
 * * data_parallel_size. Missing values are inferred exactly as DeepSpeed's `_set_batch_related_parameters`
 * (runtime/config.py) does, with the same floor divisions, and then the rule is checked; a broken rule is
 * reported with the numbers instead of DeepSpeed's assertion.
 */
import type { ConfigIssue } from '../errors.js';

/** The three batch keys as given (null when missing or "auto" without a value). */
export interface BatchSizesInput {
  train_batch_size: number | null;
  train_micro_batch_size_per_gpu: number | null;
  gradient_accumulation_steps: number | null;
}

/** The three batch keys, all known. */
export interface BatchSizes {
  train_batch_size: number;
  train_micro_batch_size_per_gpu: number;
  gradient_accumulation_steps: number;
}

/**
 * Fills in the missing batch keys and checks the rule.
 *
 * Two given: the third follows (with floor division, as in DeepSpeed). Only train_batch_size: accumulation 1
 * and micro = train / dp. Only the micro batch: accumulation 1 and train = micro * dp. Neither train nor micro
 * batch: an issue. Every inferred value is named in the issue when the rule then fails.
 */
export function inferBatchSizes(
  given: BatchSizesInput,
  dataParallelSize: number,
): { value: BatchSizes | undefined; issues: ConfigIssue[] } {
  const dp = dataParallelSize;
  let train = given.train_batch_size;
  let micro = given.train_micro_batch_size_per_gpu;
  let gas = given.gradient_accumulation_steps;
  const inferred: string[] = [];

  if (train !== null && micro !== null && gas !== null) {
    // all given: nothing to infer
  } else if (train !== null && micro !== null) {
    gas = Math.floor(Math.floor(train / micro) / dp);
    inferred.push(`gradient_accumulation_steps inferred as floor(${train} / ${micro} / ${dp}) = ${gas}`);
  } else if (train !== null && gas !== null) {
    micro = Math.floor(Math.floor(train / dp) / gas);
    inferred.push(`train_micro_batch_size_per_gpu inferred as floor(${train} / ${dp} / ${gas}) = ${micro}`);
  } else if (micro !== null && gas !== null) {
    train = micro * gas * dp;
  } else if (train !== null) {
    gas = 1;
    micro = Math.floor(train / dp);
    inferred.push(`train_micro_batch_size_per_gpu inferred as floor(${train} / ${dp}) = ${micro}`);
  } else if (micro !== null) {
    gas = 1;
    train = micro * dp;
  } else {
    return {
      value: undefined,
      issues: [
        {
          path: given.gradient_accumulation_steps === null ? 'train_batch_size' : 'train_micro_batch_size_per_gpu',
          value: undefined,
          rule: 'either train_batch_size or train_micro_batch_size_per_gpu must be given',
          suggestion: 'set "train_micro_batch_size_per_gpu" (and optionally "gradient_accumulation_steps")',
        },
      ],
    };
  }

  const why = inferred.length ? ` (${inferred.join('; ')})` : '';
  const issues: ConfigIssue[] = [];
  for (const [path, v] of [
    ['gradient_accumulation_steps', gas],
    ['train_micro_batch_size_per_gpu', micro],
  ] as const) {
    if (v < 1) issues.push({ path, value: v, rule: `must be >= 1${why}` });
  }
  if (issues.length === 0 && train !== micro * gas * dp) {
    issues.push({
      path: 'train_batch_size',
      value: train,
      rule:
        `train_batch_size must equal train_micro_batch_size_per_gpu * gradient_accumulation_steps * ` +
        `data_parallel_size, but ${train} != ${micro} * ${gas} * ${dp} = ${micro * gas * dp}${why}`,
      suggestion: suggestFix(train, micro, gas, dp),
    });
  }
  return issues.length
    ? { value: undefined, issues }
    : {
        value: { train_batch_size: train, train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: gas },
        issues,
      };
}

/** A concrete way out: the train batch size that fits, or an accumulation that does when one exists. */
function suggestFix(train: number, micro: number, gas: number, dp: number): string {
  const options = [`set train_batch_size to ${micro * gas * dp}`];
  if (train % (micro * dp) === 0) options.push(`set gradient_accumulation_steps to ${train / (micro * dp)}`);
  options.push('or give only two of the three keys');
  return options.join(', ');
}
