/**
 * Shared machinery of the flat-buffer optimizers: param groups, per-group state (a step counter and named
 * Float32Array buffers allocated lazily on the first step), buffer-layout checks and state dicts.
 */
import { ZeroFlowError } from '../errors.js';
import { scaleFlat } from './flat-loops.js';
import type { FlatGroupBuffers, FlatOptimizer, OptimizerStateDict, ParamGroupOptions } from './types.js';

/** The state one param group carries between steps. */
export interface FlatGroupState {
  /** Number of updates applied to this group (torch increments it before computing the update). */
  step: number;
  /** Named state buffers (exp_avg, exp_avg_sq, momentum_buffer ...), each as long as the group's params. */
  buffers: Record<string, Float32Array>;
}

function copyOptions(o: ParamGroupOptions): ParamGroupOptions {
  const copy: ParamGroupOptions = { ...o };
  if (o.betas) copy.betas = [o.betas[0], o.betas[1]];
  return copy;
}

/**
 * Whether `optimizer.step` honours `FlatGroupBuffers.gradScale` (ZeroFlow's optimizers do; an optimizer of
 * another make may not, and then its owner clips the gradients in place).
 */
export function acceptsGradScale(optimizer: FlatOptimizer): boolean {
  return optimizer instanceof FlatOptimizerBase;
}

/** Base class of Adam, AdamW, SGD and Lamb. Subclasses implement `updateGroup`, one plain typed-array loop. */
export abstract class FlatOptimizerBase implements FlatOptimizer {
  abstract readonly type: string;
  readonly paramGroups: ParamGroupOptions[];
  protected readonly groupStates: FlatGroupState[];

  /**
   * @param groups fully specified group options; copied, so schedulers may write the copies freely
   */
  protected constructor(groups: ParamGroupOptions[]) {
    if (groups.length === 0) throw new ZeroFlowError('An optimizer needs at least one param group.');
    this.paramGroups = groups.map(copyOptions);
    this.groupStates = groups.map(() => ({ step: 0, buffers: {} }));
  }

  /** Buffers that every group must have once it has stepped (checked by loadStateDict). */
  protected abstract readonly requiredBuffers: readonly string[];
  /** Buffers that may be absent (SGD's momentum buffer exists only once momentum was non-zero). */
  protected readonly optionalBuffers: readonly string[] = [];
  /** Whether `updateGroup` applies `FlatGroupBuffers.gradScale` itself; else `step` scales `grads` first. */
  protected readonly appliesGradScale: boolean = false;

  /** Applies one update to group `index`; `state.step` has already been incremented. */
  protected abstract updateGroup(
    index: number,
    group: ParamGroupOptions,
    state: FlatGroupState,
    buffers: FlatGroupBuffers,
  ): void;

  step(buffers: FlatGroupBuffers[]): void {
    if (buffers.length !== this.paramGroups.length) {
      throw new ZeroFlowError(
        `${this.type}.step got ${buffers.length} group buffers but the optimizer has ${this.paramGroups.length} ` +
          'param groups; pass one FlatGroupBuffers per param group, in the same order.',
      );
    }
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i];
      if (b.params.length !== b.grads.length) {
        throw new ZeroFlowError(
          `${this.type}.step: group ${i} has ${b.params.length} params but ${b.grads.length} grads; ` +
            'both buffers must cover the same slice.',
        );
      }
    }
    for (let i = 0; i < buffers.length; i++) {
      const state = this.groupStates[i];
      state.step += 1;
      const b = buffers[i];
      // an optimizer that does not apply gradScale itself gets the gradients scaled in place (same bits)
      const prescale = (b.gradScale ?? 1) !== 1 && !this.appliesGradScale;
      if (prescale) scaleFlat(b.grads, b.gradScale!);
      this.updateGroup(i, this.paramGroups[i], state, prescale ? { ...b, gradScale: 1 } : b);
    }
  }

  /**
   * The state buffer `name` of group `index`, allocated (zeros) on first use. Throws when it exists with a
   * different length: the buffer layout changed, or a state dict for another partition was loaded.
   */
  protected stateBuffer(index: number, name: string, length: number): Float32Array {
    const state = this.groupStates[index];
    const existing = state.buffers[name];
    if (existing === undefined) {
      const fresh = new Float32Array(length);
      state.buffers[name] = fresh;
      return fresh;
    }
    if (existing.length !== length) {
      throw new ZeroFlowError(
        `${this.type}: group ${index} state "${name}" has ${existing.length} elements but the params buffer has ` +
          `${length}. The flat layout changed since the state was created, or the loaded state dict belongs to ` +
          'another partition; load the state saved for this rank and layout.',
      );
    }
    return existing;
  }

  stateBytes(): number {
    let bytes = 0;
    for (const state of this.groupStates) for (const buf of Object.values(state.buffers)) bytes += buf.byteLength;
    return bytes;
  }

  stateDict(): OptimizerStateDict {
    return {
      type: this.type,
      groups: this.paramGroups.map((options, i) => {
        const state = this.groupStates[i];
        const buffers: Record<string, Float32Array> = {};
        for (const [name, buf] of Object.entries(state.buffers)) buffers[name] = new Float32Array(buf);
        return { options: copyOptions(options), step: state.step, buffers };
      }),
    };
  }

  /** The family whose state layout this optimizer shares (Adam and AdamW load each other's state). */
  protected stateFamily(type: string): string {
    const t = type.toLowerCase();
    return t === 'adamw' ? 'adam' : t;
  }

  loadStateDict(state: OptimizerStateDict): void {
    if (this.stateFamily(state.type) !== this.stateFamily(this.type)) {
      throw new ZeroFlowError(
        `Cannot load ${state.type} optimizer state into ${this.type}: the state buffers differ. ` +
          `Use the optimizer type the checkpoint was saved with, or start the optimizer fresh.`,
      );
    }
    if (state.groups.length !== this.paramGroups.length) {
      throw new ZeroFlowError(
        `The optimizer state has ${state.groups.length} param groups but ${this.type} has ` +
          `${this.paramGroups.length}; build the param groups the same way as when the state was saved.`,
      );
    }
    // Validate everything first so that a bad state dict leaves this optimizer untouched.
    const known = [...this.requiredBuffers, ...this.optionalBuffers];
    state.groups.forEach((g, i) => {
      if (!Number.isInteger(g.step) || g.step < 0) {
        throw new ZeroFlowError(`Optimizer state group ${i}: step must be an integer >= 0, got ${g.step}.`);
      }
      const names = Object.keys(g.buffers);
      for (const name of names) {
        if (!known.includes(name)) {
          throw new ZeroFlowError(
            `Optimizer state group ${i} has an unknown buffer "${name}" for ${this.type} (expects ${known.join(', ')}).`,
          );
        }
      }
      if (g.step > 0) {
        for (const name of this.requiredBuffers) {
          if (!names.includes(name)) {
            throw new ZeroFlowError(`Optimizer state group ${i} is at step ${g.step} but has no "${name}" buffer.`);
          }
        }
      }
      const lengths = new Set(names.map((n) => g.buffers[n].length));
      for (const existing of Object.values(this.groupStates[i].buffers)) lengths.add(existing.length);
      if (lengths.size > 1) {
        throw new ZeroFlowError(
          `Optimizer state group ${i}: buffer lengths ${[...lengths].join(' vs ')} do not match; the state dict ` +
            'belongs to another partition or layout than this optimizer.',
        );
      }
    });
    state.groups.forEach((g, i) => {
      // Assign in place: schedulers hold references to these group objects.
      Object.assign(this.paramGroups[i], copyOptions(g.options));
      const buffers: Record<string, Float32Array> = {};
      for (const [name, buf] of Object.entries(g.buffers)) buffers[name] = new Float32Array(buf);
      this.groupStates[i].step = g.step;
      this.groupStates[i].buffers = buffers;
    });
  }

  /** The update count of each group. */
  getSteps(): number[] {
    return this.groupStates.map((s) => s.step);
  }
}
