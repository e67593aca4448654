/**
 * Mixed-precision parameter storage of an optimizer-step owner (DESIGN.md sections 6-7): the full model as
 * 16-bit flat buffers (2 bytes per parameter, the only full copy a rank holds) and fp32 master weights for
 * this rank's partition only (stage 0: everything; stages 1-2: the shard its optimizer steps).
 *
 * `Parameter.tensor` keeps working for code outside the forward pass (plugins such as an EMA, `param.load`,
 * `Module.stateDict`): each parameter's `tensor` becomes an accessor that materializes an fp32 tensor on
 * first read, from the fp32 masters where this rank holds them and the widened 16-bit values elsewhere.
 * Such a copy is a snapshot: the owner writes it back (so `param.load` and `assign` reach the masters and
 * the 16-bit buffer) and frees it before the next forward and optimizer step (`sync`). Writing back an
 * unchanged copy changes nothing: the 16-bit values round-trip exactly and the masters are copied as read.
 * The forward pass never touches these copies: the amp service's parameter access widens `half(p)`.
 */
import type { CommBuffer, ProcessGroup } from '../comm/types.js';
import type { Parameter } from '../nn/parameter.js';
import { type HalfFormat, narrow, widen } from '../numeric/half.js';
import { addIntoFlat } from '../optim/flat-loops.js';
import type { HalfParameterStorage } from '../plugin.js';
import { tf } from '../tf.js';
import { sharedFloat32 } from '../zero/collectives.js';
import type { ShardRange } from '../zero/partition.js';
import { bindParametersToBuffer, type FlatGroup } from './flat-params.js';
import type { MixedPrecisionLayout } from './mixed-precision.js';

/** A gradient (or parameter) buffer: fp32, or 16-bit bit patterns of a {@link HalfFormat}. */
export type FlatBuffer = Float32Array | Uint16Array;

/** A Uint16Array in shared memory (the tcp backend then skips its staging copies). */
export function sharedUint16(n: number): Uint16Array {
  return new Uint16Array(new SharedArrayBuffer(Math.max(0, n) * 2));
}

let scratch = new Float32Array(0);
function scratchOf(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(n);
  return scratch.subarray(0, n);
}

/**
 * `dst[dstOffset + i] += src[srcOffset + i]` for `length` elements, either side fp32 or 16-bit `format`.
 * A 16-bit destination is widened, summed in fp32 and rounded once per addition, as a 16-bit tensor `+=`
 * does in PyTorch (DeepSpeed's fp16/bf16 gradient accumulation). With `fresh` the destination range holds
 * zeros and is not read (the caller skipped its zero fill): the result has the bits of adding into zeros.
 */
export function addInto(
  dst: FlatBuffer,
  dstOffset: number,
  src: FlatBuffer,
  srcOffset: number,
  length: number,
  format: HalfFormat,
  fresh = false,
): void {
  if (length <= 0) return;
  const s =
    src instanceof Float32Array
      ? src.subarray(srcOffset, srcOffset + length)
      : widen(src.subarray(srcOffset, srcOffset + length), format, new Float32Array(length));
  if (dst instanceof Float32Array) {
    addIntoFlat(dst.subarray(dstOffset, dstOffset + length), s, fresh);
    return;
  }
  const d = dst.subarray(dstOffset, dstOffset + length);
  const w = scratchOf(length);
  // fresh: 0 + s, so that a -0 is narrowed as +0 exactly as the widen-add-narrow path rounds it
  if (fresh) addIntoFlat(w, s, true);
  else addIntoFlat(widen(d, format, w), s, false);
  narrow(w, format, d);
}

/** `buf` as fp32: itself when it is fp32, else widened into `into` (allocated when omitted). */
export function asFloat32(buf: FlatBuffer, format: HalfFormat, into?: Float32Array): Float32Array {
  return buf instanceof Float32Array ? buf : widen(buf, format, into ?? new Float32Array(buf.length));
}

/** The collective dtype option of a buffer (16-bit buffers must name theirs). */
export function dtypeOpts(buf: CommBuffer, format: HalfFormat): { dtype?: 'float16' | 'bfloat16' } {
  return buf instanceof Uint16Array ? { dtype: format === 'fp16' ? 'float16' : 'bfloat16' } : {};
}

/** What one flat group keeps in fp32 on this rank: `size` master elements at `ranges` of the flat group. */
export interface MasterShard {
  size: number;
  ranges: readonly ShardRange[];
}

/** The whole group as the shard (stage 0). */
export function wholeGroup(group: FlatGroup): MasterShard {
  return { size: group.paddedSize, ranges: [{ flatStart: 0, shardStart: 0, length: group.paddedSize }] };
}

interface Where {
  group: number;
  offset: number;
  size: number;
}

/**
 * Flat gradient buffers (one per group, fp32 or 16-bit `format`) that backward hooks accumulate into, with
 * the zero fill after each step deferred: the first gradient a parameter gets after {@link zero} is copied
 * over whatever its slice holds (`addInto`'s `fresh`: the bits of adding into zeros), and {@link settle}
 * zeroes only the slices that got no gradient before anything reads the buffers. This saves a fill and a
 * read of the whole buffer per step. Padding is never written by hooks and stays zero.
 */
export class FlatGradients {
  /** The gradient buffers, padded like their groups; valid only after {@link settle}. */
  readonly buffers: FlatBuffer[];
  private readonly where = new Map<Parameter, Where & { index: number }>();
  /** Per parameter: got a gradient since the last {@link zero}. */
  private readonly written: Uint8Array;
  private readonly slices: (Where & { index: number })[] = [];
  /** Some unwritten slices may hold stale values (set by zero, cleared by settle). */
  private stale = false;

  constructor(
    groups: readonly FlatGroup[],
    private readonly format: HalfFormat | null | undefined,
  ) {
    this.buffers = groups.map((g) => (format ? sharedUint16(g.paddedSize) : sharedFloat32(g.paddedSize)));
    groups.forEach((g, gi) => {
      for (const e of g.entries) {
        const w = { group: gi, offset: e.offset, size: e.size, index: this.slices.length };
        this.slices.push(w);
        this.where.set(e.param, w);
      }
    });
    this.written = new Uint8Array(this.slices.length);
  }

  /** Where `param` lives, or undefined when it is not one of these groups' parameters. */
  slot(param: Parameter): Where | undefined {
    return this.where.get(param);
  }

  /** Accumulates a gradient of `param` (full size, fp32); false when `param` is unknown. */
  add(param: Parameter, g: Float32Array): boolean {
    const w = this.where.get(param);
    if (!w) return false;
    const fresh = this.written[w.index] === 0;
    addInto(this.buffers[w.group], w.offset, g, 0, w.size, this.format ?? 'bf16', fresh);
    this.written[w.index] = 1;
    return true;
  }

  /** Zeroes the slices left stale by {@link zero}: call before reading or reducing the buffers. */
  settle(): void {
    if (!this.stale) return;
    for (const w of this.slices)
      if (this.written[w.index] === 0) this.buffers[w.group].fill(0, w.offset, w.offset + w.size);
    this.stale = false;
  }

  /** Drops the accumulated gradients (lazily: see the class comment). */
  zero(): void {
    this.written.fill(0);
    this.stale = true;
  }
}

/** 16-bit flat parameters with fp32 master shards; see the file comment. */
export class HalfFlatParameters implements HalfParameterStorage {
  /** The full parameters of each group, 16-bit (padded size). */
  readonly flat: Uint16Array[];
  /** This rank's fp32 master weights of each group (`shards[g].size` elements). */
  readonly master: Float32Array[];
  private readonly where = new Map<Parameter, Where>();
  private readonly cache = new Map<Parameter, tf.Tensor>();
  private initial: Float32Array[] | null;

  /**
   * Takes every parameter's current fp32 value, frees its tensor and installs the `tensor` accessor.
   * @param keepInitial keep the fp32 values until {@link broadcastInitial} (multi-rank jobs)
   */
  constructor(
    readonly format: HalfFormat,
    readonly groups: readonly FlatGroup[],
    readonly shards: readonly MasterShard[],
    keepInitial: boolean,
  ) {
    const full = groups.map((g) => {
      const f = keepInitial
        ? new Float32Array(new SharedArrayBuffer(g.paddedSize * 4))
        : new Float32Array(g.paddedSize);
      for (const e of g.entries) f.set(e.param.values(), e.offset);
      return f;
    });
    this.flat = groups.map((g) => sharedUint16(g.paddedSize));
    this.master = shards.map((s) => new Float32Array(s.size));
    this.fromFull(full);
    this.initial = keepInitial ? full : null;
    groups.forEach((g, gi) => {
      for (const e of g.entries) {
        this.where.set(e.param, { group: gi, offset: e.offset, size: e.size });
        e.param.tensor?.dispose();
        Object.defineProperty(e.param, 'tensor', {
          configurable: true,
          enumerable: true,
          get: () => this.materialize(e.param),
          set: (t: tf.Tensor | null) => this.adopt(e.param, t),
        });
      }
    });
  }

  /** Every rank starts from rank 0's fp32 weights: broadcasts the values kept by the constructor. */
  async broadcastInitial(comm: ProcessGroup): Promise<void> {
    const full = this.initial;
    if (!full) return;
    for (const f of full) await comm.broadcast(f, 0).promise;
    this.fromFull(full);
    this.initial = null;
  }

  /**
   * {@link HalfParameterStorage.half}: the 16-bit view of `p`. A pending `Parameter.tensor` snapshot of `p`
   * is written back first, so that a forward right after `param.load` (e.g. `engine.evaluate`) sees it.
   */
  half(p: Parameter): Uint16Array | undefined {
    const w = this.where.get(p);
    if (!w) return undefined;
    const t = this.cache.get(p);
    if (t) {
      if (!t.isDisposed) {
        this.writeBack(p, t.dataSync() as Float32Array);
        t.dispose();
      }
      this.cache.delete(p);
    }
    return this.flat[w.group].subarray(w.offset, w.offset + w.size);
  }

  /** Frees the `Parameter.tensor` snapshots without writing them back (the owner is being disposed). */
  dispose(): void {
    for (const t of this.cache.values()) if (!t.isDisposed) t.dispose();
    this.cache.clear();
  }

  /** Bytes of the 16-bit parameters. */
  get halfBytes(): number {
    return this.flat.reduce((a, h) => a + h.byteLength, 0);
  }

  /** Bytes of the fp32 master shards. */
  get masterBytes(): number {
    return this.master.reduce((a, m) => a + m.byteLength, 0);
  }

  /** Bytes of fp32 copies materialized through `Parameter.tensor` and not written back yet. */
  get materializedBytes(): number {
    let n = 0;
    for (const p of this.cache.keys()) n += p.size * 4;
    return n;
  }

  /**
   * Writes materialized `Parameter.tensor` copies back into the 16-bit buffer and the masters, and frees
   * them. Owners call it before each forward, step, checkpoint and load.
   */
  sync(): void {
    for (const [p, t] of this.cache) {
      if (!t.isDisposed) {
        this.writeBack(p, t.dataSync() as Float32Array);
        t.dispose();
      }
    }
    this.cache.clear();
  }

  /** After the optimizer stepped the masters: rounds every master range into the 16-bit buffer. */
  narrowMasters(): void {
    this.shards.forEach((s, g) => {
      for (const r of s.ranges)
        narrow(
          this.master[g].subarray(r.shardStart, r.shardStart + r.length),
          this.format,
          this.flat[g].subarray(r.flatStart, r.flatStart + r.length),
        );
    });
  }

  /**
   * Full fp32 values by name from full fp32 group buffers (`full[g]` of padded size, e.g. gathered from all
   * ranks' masters).
   */
  byName(full: readonly Float32Array[]): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    this.groups.forEach((g, gi) => {
      for (const e of g.entries) out[e.name] = full[gi].slice(e.offset, e.offset + e.size);
    });
    return out;
  }

  /** Copies this rank's masters into their places of full fp32 group buffers (the rest is left as is). */
  mastersInto(full: readonly Float32Array[]): void {
    this.shards.forEach((s, g) => {
      for (const r of s.ranges)
        full[g].set(this.master[g].subarray(r.shardStart, r.shardStart + r.length), r.flatStart);
    });
  }

  private fromFull(full: readonly Float32Array[]): void {
    full.forEach((f, g) => {
      narrow(f, this.format, this.flat[g]);
      for (const r of this.shards[g].ranges)
        this.master[g].set(f.subarray(r.flatStart, r.flatStart + r.length), r.shardStart);
    });
  }

  private materialize(p: Parameter): tf.Tensor {
    const cached = this.cache.get(p);
    if (cached && !cached.isDisposed) return cached;
    const w = this.where.get(p)!;
    const values = widen(this.flat[w.group].subarray(w.offset, w.offset + w.size), this.format);
    this.overlapMasters(w, (masterPart, at) => values.set(masterPart, at));
    const t = tf.tensor(values, p.shape, 'float32');
    this.cache.set(p, t);
    return t;
  }

  /** `p.tensor = t` (e.g. `Parameter.assign`, which disposes the previous tensor itself). */
  private adopt(p: Parameter, t: tf.Tensor | null): void {
    if (t === null) this.cache.delete(p);
    else if (this.cache.get(p) !== t) this.cache.set(p, t);
  }

  private writeBack(p: Parameter, values: Float32Array): void {
    const w = this.where.get(p)!;
    narrow(values, this.format, this.flat[w.group].subarray(w.offset, w.offset + w.size));
    this.overlapMasters(w, (masterPart, at) => masterPart.set(values.subarray(at, at + masterPart.length)));
  }

  /** Calls `fn(masterView, offsetInParam)` for each master range overlapping `w`. */
  private overlapMasters(w: Where, fn: (masterPart: Float32Array, at: number) => void): void {
    for (const r of this.shards[w.group].ranges) {
      const a = Math.max(w.offset, r.flatStart);
      const b = Math.min(w.offset + w.size, r.flatStart + r.length);
      if (b <= a) continue;
      const m = this.master[w.group].subarray(r.shardStart + (a - r.flatStart), r.shardStart + (b - r.flatStart));
      fn(m, a - w.offset);
    }
  }
}

/** Where an owner keeps the full parameters: exactly one of the two is set. */
export interface OwnerParameters {
  /** fp32 training: one flat buffer per group, which the model's tensors view. */
  params: Float32Array[] | null;
  /** Under amp: 16-bit flat copies with fp32 masters for this rank's shards, attached to the amp service. */
  half: HalfFlatParameters | null;
}

/**
 * The parameter storage of an optimizer-step owner (stages 0-2): under amp (`mp`), 16-bit flat copies with
 * fp32 masters for `shards`, handed to the amp service for the forward pass; else fp32 flat buffers bound
 * to the model's parameters.
 */
export function ownerParameters(
  mp: MixedPrecisionLayout | null,
  groups: FlatGroup[],
  shards: MasterShard[],
  dpSize: number,
): OwnerParameters {
  if (mp) {
    const half = new HalfFlatParameters(mp.format, groups, shards, dpSize > 1);
    mp.service.attachParameterStorage?.(half);
    return { params: null, half };
  }
  const params = groups.map((g) => sharedFloat32(g.paddedSize));
  groups.forEach((g, i) => bindParametersToBuffer(g, params[i]));
  return { params, half: null };
}
