/**
 * The parameter access hook of ZeRO stage 3: each leaf layer's partitioned weights are all-gathered from
 * the ranks' shards just before the leaf computes and disposed right after. With `recomputeLeaves` the
 * leaf's forward is not taped, so backward gathers the weights again to recompute the leaf's local
 * gradient (DeepSpeed gathers twice too). Persistent (small) parameters stay whole and are used as is.
 *
 * Every gather carries a one-element header, the id of the parameters this rank is gathering, and every
 * rank checks that all headers agree: ranks whose forward or backward took different paths fail with an
 * error that names what each rank wanted, instead of mixing up weights or hanging.
 */
import {
  CommError,
  type Module,
  type Parameter,
  type ParameterAccess,
  type ProcessGroup,
  sharedFloat32,
  tf,
  ZeroFlowError,
} from '@zeroflow/core';
import type { ParamSlot, Stage3Layout } from './layout.js';

/** Options of {@link ShardGatherer}. */
export interface GathererOptions {
  /** Most parameter elements gathered at once (`stage3_max_live_parameters`). */
  maxLiveElements: number;
}

/** Headers are float32: ids stay below 2^24, where every integer is exact. */
const ID_MODULUS = 16_777_213;

function gatherId(slots: readonly ParamSlot[]): number {
  let h = 7;
  for (const s of slots) h = (h * 31 + s.index + 1) % ID_MODULUS;
  return h;
}

/** ParameterAccess that gathers partitioned parameters from the shards of all ranks. */
export class ShardGatherer implements ParameterAccess {
  readonly recomputeLeaves = true;
  private readonly gathered = new Set<tf.Tensor>();
  private liveElements = 0;
  private peakElements = 0;
  private input: Float32Array = new Float32Array(0);
  private output: Float32Array = new Float32Array(0);
  /** Gathers issued since the last {@link takeGatherCount}. */
  private gathers = 0;

  /**
   * @param shards one per param group: this rank's fp32 parameter shard (the optimizer steps it in place)
   */
  constructor(
    private readonly layout: Stage3Layout,
    private readonly comm: ProcessGroup | null,
    private readonly shards: Float32Array[],
    private readonly opts: GathererOptions,
  ) {}

  acquire(params: Parameter[], leaf: Module): tf.Tensor[] {
    const out: (tf.Tensor | null)[] = params.map((p) => {
      const s = this.layout.slots.get(p);
      if (s && !s.persistent) return null;
      if (!p.tensor) throw new ZeroFlowError(`parameter "${p.name}" is neither partitioned nor materialized`);
      return p.tensor;
    });
    const todo = params.flatMap((p, i) => (out[i] ? [] : [{ i, slot: this.layout.slots.get(p)! }]));
    if (todo.length === 0) return out as tf.Tensor[];
    const values = this.gather(
      todo.map((t) => t.slot),
      leaf,
    );
    todo.forEach((t, k) => {
      const w = tf.tensor(values[k], t.slot.param.shape, 'float32');
      this.gathered.add(w);
      out[t.i] = w;
    });
    return out as tf.Tensor[];
  }

  release(_params: Parameter[], weights: tf.Tensor[]): void {
    for (const w of weights) {
      if (!this.gathered.delete(w)) continue;
      this.liveElements -= w.size;
      w.dispose();
    }
  }

  /** Full fp32 values of `slots`, all-gathered from every rank's chunk (blocking). */
  gather(slots: readonly ParamSlot[], leaf?: Module): Float32Array[] {
    const elements = slots.reduce((a, s) => a + s.param.size, 0);
    if (this.liveElements + elements > this.opts.maxLiveElements) {
      throw new ZeroFlowError(
        `gathering ${slots.map((s) => s.name).join(', ')} (${elements} elements) would hold ${this.liveElements + elements} gathered parameter elements, above zero_optimization.stage3_max_live_parameters = ${this.opts.maxLiveElements}: raise it to at least the largest layer's size`,
      );
    }
    const n = this.comm?.size ?? 1;
    const block = 1 + slots.reduce((a, s) => a + s.chunk, 0);
    if (this.input.length < block) this.input = sharedFloat32(block);
    if (this.output.length < n * block) this.output = sharedFloat32(n * block);
    const input = this.input.subarray(0, block);
    const output = this.output.subarray(0, n * block);
    const id = gatherId(slots);
    input[0] = id;
    let o = 1;
    for (const s of slots) {
      input.set(this.shards[s.group].subarray(s.shardOffset, s.shardOffset + s.chunk), o);
      o += s.chunk;
    }
    const what = () => `${slots.map((s) => s.name).join(', ')}${leaf ? ` (leaf ${leaf.constructor.name})` : ''}`;
    if (this.comm) {
      try {
        this.comm.allGather(output, input).wait();
      } catch (e) {
        if (!(e instanceof CommError)) throw e;
        throw new ZeroFlowError(
          `ZeRO-3: the all-gather of ${what()} failed on this rank (${(e as Error).message}). When ranks disagree on which parameters to gather, their forward/backward took different paths: stage 3 needs the same control flow (the same leaf layers in the same order) on every data-parallel rank`,
        );
      }
      const ids = Array.from({ length: n }, (_, q) => output[q * block]);
      if (ids.some((x) => x !== id)) {
        throw new ZeroFlowError(
          `ZeRO-3: ranks gathered different parameters at the same point (gather ids by rank: ${ids.join(', ')}; this rank wanted ${what()}): their forward/backward took different paths. Stage 3 needs the same control flow (the same leaf layers in the same order) on every data-parallel rank`,
        );
      }
    } else output.set(input);
    this.gathers++;
    this.liveElements += elements;
    this.peakElements = Math.max(this.peakElements, this.liveElements);
    let off = 1;
    return slots.map((s) => {
      const full = new Float32Array(s.param.size);
      for (let q = 0; q < n; q++) {
        const start = q * s.chunk;
        const len = Math.min(s.chunk, full.length - start);
        if (len > 0) full.set(output.subarray(q * block + off, q * block + off + len), start);
      }
      off += s.chunk;
      return full;
    });
  }

  /** Marks `elements` gathered outside a leaf (e.g. full weights for a checkpoint) as freed again. */
  releaseElements(elements: number): void {
    this.liveElements -= elements;
  }

  /** Gathered parameter bytes held now, at peak, and the staging buffers' bytes. */
  get stats(): { liveBytes: number; peakBytes: number; stagingBytes: number; gathers: number } {
    return {
      liveBytes: this.liveElements * 4,
      peakBytes: this.peakElements * 4,
      stagingBytes: this.input.byteLength + this.output.byteLength,
      gathers: this.gathers,
    };
  }
}
