/**
 * The parameter access hook of ZeRO stage 3: each leaf layer's partitioned weights are all-gathered from
 * the ranks' shards just before the leaf computes and disposed right after. With `recomputeLeaves` the
 * leaf's forward is not taped, so backward gathers the weights again to recompute the leaf's local
 * gradient (DeepSpeed gathers twice too; a leaf with a `LeafBackward`, e.g. Linear, skips the re-run).
 * Persistent (small) parameters stay whole and are used as is.
 *
 * Prefetch (`stage3_prefetch_bucket_size`, as DeepSpeed's PartitionedParameterCoordinator): the first
 * forward+backward records the order of gathers (the trace, see {@link GatherTrace}). From then on, when a
 * leaf gathers, the all-gathers of the next leaves along the trace are launched too, up to the bucket size
 * in elements ahead, so they travel while this leaf computes (collectives progress on the comm backend's
 * own thread; the synchronous `wait()` only blocks when a result is not there yet). Prefetched weights
 * count toward `stage3_max_live_parameters`. A pass that departs from the trace drops it and gathers on
 * demand; the next pass records a new one.
 *
 * Reuse (`stage3_max_reuse_distance`, DeepSpeed's semantics): a leaf's weights are not freed when the trace
 * gathers the same parameters again before that many elements of other gathers; that gather then uses them
 * without communication. Prefetch likewise skips a gather whose weights are in use or already on their way,
 * and keeps those for it.
 *
 * Mixed precision (amp): the shards are 16-bit, so gathers move 16-bit bit patterns (half of fp32's bytes),
 * kept weights stay 16-bit, and each leaf's weights are widened to fp32 tensors just before it computes.
 * Persistent parameters are then 16-bit copies on every rank (`persistentHalf`), widened at each use too.
 *
 * Every gather carries a one-element header, the id of the parameters this rank is gathering, and every
 * rank checks that all headers agree when it uses the result: ranks whose forward or backward took
 * different paths fail with an error that names what each rank wanted, instead of mixing up weights or
 * hanging. Prefetches are issued at the same points on every rank (a pure function of the trace, the
 * settings and the gathers so far), so the collectives of ranks with the same control flow always match.
 */
import {
  type FlatBuffer,
  type HalfFormat,
  type Module,
  type Parameter,
  type ParameterAccess,
  type ProcessGroup,
  tf,
  widen,
  ZeroFlowError,
} from '@zeroflow/core';
import { HeaderedAllGather, type PendingGather } from './all-gather.js';
import { GatheredStorage } from './gathered-storage.js';
import type { ParamSlot, Stage3Layout } from './layout.js';
import { elementsOf, GatherTrace, sameSlots } from './trace.js';

/** Options of {@link ShardGatherer}. */
export interface GathererOptions {
  /** Most parameter elements gathered at once, prefetched ones included (`stage3_max_live_parameters`). */
  maxLiveElements: number;
  /** Elements to prefetch ahead along the trace (`stage3_prefetch_bucket_size`); 0 disables prefetch. */
  prefetchElements?: number;
  /**
   * Keep a leaf's gathered weights when the trace gathers the same parameters again before this many
   * elements of other gathers (`stage3_max_reuse_distance`); 0 frees them after every use.
   */
  maxReuseDistance?: number;
  /** amp: the 16-bit format of the shards (gathers move 16-bit data; weights are widened per leaf). */
  format?: HalfFormat | null;
  /** amp: the 16-bit whole value of a persistent parameter (persistent parameters have no fp32 tensor). */
  persistentHalf?: (p: Parameter) => Uint16Array | undefined;
}

/** One leaf's use of weights served along the trace. */
interface TracedUse {
  index: number;
  slots: readonly ParamSlot[];
  values: FlatBuffer[];
  elements: number;
  /** A later trace index that prefetch skipped because these weights were held: keep them for it. */
  reservedFor?: number;
}

/** Counters of the gatherer (cumulative). */
export interface GatherStats {
  liveBytes: number;
  peakBytes: number;
  /** All-gather staging plus gathered-weight arrays waiting for reuse. */
  stagingBytes: number;
  /** All-gathers issued (on demand and prefetched). */
  gathers: number;
  /** All-gathers launched ahead of use along the trace. */
  prefetches: number;
  /** Gathers served by a prefetch launched earlier. */
  prefetchHits: number;
  /** Prefetches never used (the pass departed from the trace). */
  prefetchDiscarded: number;
  /** Traces dropped because a pass departed from them. */
  traceInvalidations: number;
  /** Gathers served by weights kept since an earlier use (`stage3_max_reuse_distance`). */
  reuses: number;
}

/** ParameterAccess that gathers partitioned parameters from the shards of all ranks. */
export class ShardGatherer implements ParameterAccess {
  readonly recomputeLeaves = true;
  private readonly gathered = new Set<tf.Tensor>();
  /** The fp32 arrays behind gathered tensors, recycled from one gather to the next. */
  private readonly storage = new GatheredStorage();
  /** amp: fp32 tensors widened from persistent parameters' 16-bit copies, freed at release. */
  private readonly widenedPersistent = new Set<tf.Tensor>();
  /** Bytes per gathered element held (4, or 2 under amp). */
  private readonly elementBytes: number;
  private liveElements = 0;
  private peakElements = 0;
  private readonly collective: HeaderedAllGather;
  private readonly trace: GatherTrace;
  /** Prefetches launched for trace events, by trace index. */
  private ahead = new Map<number, PendingGather>();
  /** The next trace index prefetch may launch (every earlier one is launched, kept or consumed). */
  private launchFrom = 0;
  /** Gathered values kept for their reuse at a later trace index. */
  private kept = new Map<number, { values: FlatBuffer[]; elements: number }>();
  private keptElements = 0;
  /** Tensors served along the trace, with their event's record (for reuse at release). */
  private traced = new Map<tf.Tensor, TracedUse>();
  /** Traced uses whose weights are held by a leaf right now. */
  private held = new Set<TracedUse>();
  /** Trace index -> a later index that prefetch skipped because that gather brings the same weights. */
  private reserved = new Map<number, number>();
  private inPass = false;
  private counts = {
    gathers: 0,
    prefetches: 0,
    prefetchHits: 0,
    prefetchDiscarded: 0,
    traceInvalidations: 0,
    reuses: 0,
  };

  /**
   * @param shards one per param group: this rank's parameter shard, fp32 (the optimizer steps it in place)
   *   or 16-bit under amp (`opts.format`; the owner rounds its fp32 masters into it after each step)
   * @param log where a dropped trace is reported
   */
  constructor(
    private readonly layout: Stage3Layout,
    private readonly comm: ProcessGroup | null,
    shards: FlatBuffer[],
    private readonly opts: GathererOptions,
    private readonly log: (message: string) => void = () => {},
  ) {
    this.trace = new GatherTrace();
    this.collective = new HeaderedAllGather(comm, shards, opts.format ?? null);
    this.elementBytes = opts.format ? 2 : 4;
  }

  /** fp32 values of a gathered buffer: itself, or a fresh widening of 16-bit bit patterns. */
  private toFloat32(v: FlatBuffer): Float32Array {
    return v instanceof Float32Array ? v : widen(v, this.opts.format ?? 'bf16', this.storage.take(v.length));
  }

  private get prefetchElements(): number {
    return this.comm ? Math.max(0, this.opts.prefetchElements ?? 0) : 0;
  }

  private get reuseDistance(): number {
    return this.comm ? Math.max(0, this.opts.maxReuseDistance ?? 0) : 0;
  }

  /** Prefetch and reuse both follow the trace; a single rank gathers locally and needs neither. */
  private get tracing(): boolean {
    return this.prefetchElements > 0 || this.reuseDistance > 0;
  }

  /** A forward+backward starts: gathers from here to {@link endPass} follow (or record) the trace. */
  beginPass(): void {
    this.drain();
    this.inPass = true;
    this.launchFrom = 0;
    // Left over only if a leaf threw between acquire and release.
    this.held.clear();
    this.traced.clear();
    this.reserved.clear();
    if (this.tracing) this.trace.begin();
  }

  /** The forward+backward is over: completes a recording, or drops a trace this pass did not follow to its end. */
  endPass(): void {
    this.inPass = false;
    const why = this.tracing ? this.trace.end() : null;
    if (why) this.invalidate(why);
    this.drain();
  }

  acquire(params: Parameter[], leaf: Module): tf.Tensor[] {
    const out: (tf.Tensor | null)[] = params.map((p) => {
      const s = this.layout.slots.get(p);
      if (s && !s.persistent) return null;
      const half = s ? this.opts.persistentHalf?.(p) : undefined;
      if (half && !p.tensor) {
        const w = tf.tensor(this.toFloat32(half), p.shape, 'float32');
        this.widenedPersistent.add(w);
        return w;
      }
      if (!p.tensor) throw new ZeroFlowError(`parameter "${p.name}" is neither partitioned nor materialized`);
      return p.tensor;
    });
    const todo = params.flatMap((p, i) => (out[i] ? [] : [{ i, slot: this.layout.slots.get(p)! }]));
    if (todo.length === 0) return out as tf.Tensor[];
    const { values, record } = this.fetch(
      todo.map((t) => t.slot),
      leaf,
    );
    todo.forEach((t, k) => {
      // widened just in time under amp: the 16-bit values stay what is gathered and kept
      const w = this.storage.tensor(this.toFloat32(values[k]), t.slot.param.shape);
      this.gathered.add(w);
      if (record) this.traced.set(w, record);
      out[t.i] = w;
    });
    return out as tf.Tensor[];
  }

  release(_params: Parameter[], weights: tf.Tensor[]): void {
    const record = weights.map((w) => this.traced.get(w)).find((r) => r !== undefined);
    if (record) this.held.delete(record);
    const keep = record ? this.keepFor(record) : -1;
    if (record && keep >= 0) {
      // Still live (counted in liveElements) until the trace reaches its reuse.
      this.kept.set(keep, { values: record.values, elements: record.elements });
      this.keptElements += record.elements;
    }
    for (const w of weights) {
      this.traced.delete(w);
      if (this.widenedPersistent.delete(w)) {
        w.dispose();
        continue;
      }
      if (!this.gathered.delete(w)) continue;
      if (keep < 0) this.liveElements -= w.size;
      // fp32 weights are the gathered values themselves: kept ones must stay; under amp they are widened copies
      this.storage.dispose(w, keep >= 0 && !this.opts.format);
    }
  }

  /**
   * Where the trace gathers these weights again if they are to be kept until then (DeepSpeed's reuse
   * distance), else -1. Not when that gather is already prefetched, and only while one largest gather still
   * fits under `stage3_max_live_parameters` beside everything kept.
   */
  private keepFor(record: TracedUse): number {
    if (!this.inPass) return -1;
    // Prefetch skipped that gather because these weights were here: they must stay (as in DeepSpeed).
    if (record.reservedFor !== undefined) return record.reservedFor;
    if (this.reuseDistance === 0) return -1;
    const j = this.trace.nextReuse(record.index, this.reuseDistance);
    if (j < this.launchFrom || this.kept.has(j)) return -1;
    if (this.keptElements + record.elements + this.trace.largestEvent > this.opts.maxLiveElements) return -1;
    return j;
  }

  /**
   * Full values of `slots`, all-gathered from every rank's chunk (blocking, never prefetched): fp32, or
   * 16-bit bit patterns under amp.
   */
  gather(slots: readonly ParamSlot[], leaf?: Module): FlatBuffer[] {
    return this.complete(this.launch(slots, leaf, true));
  }

  /** Marks `elements` gathered outside a leaf (e.g. full weights for a checkpoint) as freed again. */
  releaseElements(elements: number): void {
    this.liveElements -= elements;
  }

  /** Gathered parameter bytes held now and at peak, staging bytes, and the gather/prefetch counters. */
  get stats(): GatherStats {
    return {
      liveBytes: this.liveElements * this.elementBytes,
      peakBytes: this.peakElements * this.elementBytes,
      stagingBytes: this.collective.stagingBytes + this.storage.bytes,
      ...this.counts,
    };
  }

  /**
   * A leaf's gather inside a pass: recorded, served along the trace (kept weights, a prefetch, or launched
   * now, prefetching the next ones), or on demand. `record`: its use along the trace (null off the trace),
   * held from here until release.
   */
  private fetch(slots: readonly ParamSlot[], leaf: Module): { values: FlatBuffer[]; record: TracedUse | null } {
    const onDemand = () => ({ values: this.gather(slots, leaf), record: null });
    if (!this.inPass || !this.tracing) return onDemand();
    const step = this.trace.next(slots);
    if (step === 'recording' || step === 'none') return onDemand();
    if (step !== 'match') {
      this.invalidate(step.mismatch);
      return onDemand();
    }
    const index = this.trace.position;
    const record: TracedUse = {
      index,
      slots,
      values: [],
      elements: elementsOf(slots),
      reservedFor: this.reserved.get(index),
    };
    this.reserved.delete(index);
    const kept = this.kept.get(index);
    let current: PendingGather | null = null;
    if (kept) {
      this.kept.delete(index);
      this.keptElements -= kept.elements;
      this.counts.reuses++;
      record.values = kept.values;
    } else {
      current = this.ahead.get(index) ?? null;
      if (current) {
        this.ahead.delete(index);
        this.counts.prefetchHits++;
      }
      // Not prefetched: nothing after it was either (launches go in trace order), so it goes first.
      current ??= this.launch(slots, leaf, true);
    }
    this.launchFrom = Math.max(this.launchFrom, index + 1);
    // Held before prefetching, so that a gather of these same weights next along the trace keeps them.
    this.held.add(record);
    this.topUp();
    if (current) record.values = this.complete(current);
    return { values: record.values, record };
  }

  /** Launches the trace's next gathers while fewer than the bucket size's elements are in flight ahead. */
  private topUp(): void {
    let queued = 0;
    for (const p of this.ahead.values()) queued += p.elements;
    while (queued < this.prefetchElements) {
      const i = this.launchFrom;
      const ev = this.trace.at(i);
      if (!ev) return;
      if (this.kept.has(i)) {
        this.launchFrom++;
        continue;
      }
      // The same weights are in use by a leaf, or come with an earlier gather already on its way: keep
      // them for this gather instead of fetching them again (with reuse on; DeepSpeed's prefetcher skips
      // available parameters the same way).
      if (this.reuseDistance > 0 && this.reserveFor(i, ev)) {
        this.launchFrom++;
        continue;
      }
      const elements = elementsOf(ev);
      // Prefetches count toward stage3_max_live_parameters: stop short of it (a leaf's own gather still fits).
      if (this.liveElements + elements > this.opts.maxLiveElements) return;
      this.ahead.set(i, this.launch(ev, undefined, false));
      this.launchFrom++;
      this.counts.prefetches++;
      queued += elements;
    }
  }

  /** Marks weights in use or on their way that equal event `i`'s to be kept for it; false if there are none. */
  private reserveFor(i: number, ev: readonly ParamSlot[]): boolean {
    const holder = [...this.held].find((h) => h.reservedFor === undefined && sameSlots(h.slots, ev));
    if (holder) {
      holder.reservedFor = i;
      return true;
    }
    const sources = [...this.ahead.entries()].map(([m, p]) => [m, p.slots] as const);
    for (const m of this.kept.keys()) sources.push([m, this.trace.at(m) ?? []]);
    const source = sources.find(([m, slots]) => !this.reserved.has(m) && sameSlots(slots, ev));
    if (!source) return false;
    this.reserved.set(source[0], i);
    return true;
  }

  /** Drops the trace (this pass took another path): waits for and discards its prefetches and kept weights. */
  private invalidate(why: string): void {
    this.trace.invalidate();
    this.counts.traceInvalidations++;
    this.drain();
    this.log(`ZeRO-3: the parameter trace no longer matches (${why}); gathering on demand and recording a new trace`);
  }

  /** Completes every prefetch still ahead and frees it and any kept weights (collectives must finish on every rank). */
  private drain(): void {
    this.liveElements -= this.keptElements;
    this.kept.clear();
    this.keptElements = 0;
    const ahead = [...this.ahead.values()];
    this.ahead.clear();
    let failure: unknown = null;
    for (const p of ahead) {
      try {
        for (const v of this.complete(p)) if (v instanceof Float32Array) this.storage.give(v);
      } catch (e) {
        failure ??= e;
      }
      this.liveElements -= p.elements;
      this.counts.prefetchDiscarded++;
    }
    if (failure) throw failure;
  }

  /** Issues the all-gather of `slots` (non-blocking); `strict`: over the live limit is an error, not a skip. */
  private launch(slots: readonly ParamSlot[], leaf: Module | undefined, strict: boolean): PendingGather {
    const elements = elementsOf(slots);
    if (strict && this.liveElements + elements > this.opts.maxLiveElements) {
      throw new ZeroFlowError(
        `gathering ${slots.map((s) => s.name).join(', ')} (${elements} elements) would hold ${this.liveElements + elements} gathered parameter elements, above zero_optimization.stage3_max_live_parameters = ${this.opts.maxLiveElements}: raise it to at least the largest layer's size`,
      );
    }
    const p = this.collective.launch(slots, leaf);
    this.counts.gathers++;
    this.liveElements += elements;
    this.peakElements = Math.max(this.peakElements, this.liveElements);
    return p;
  }

  private complete(p: PendingGather): FlatBuffer[] {
    return this.collective.complete(p, (n) => this.storage.take(n));
  }
}
