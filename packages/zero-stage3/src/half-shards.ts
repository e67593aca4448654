/**
 * The 16-bit parameter storage of ZeRO stage 3 under mixed precision (DESIGN.md sections 6-7, DeepSpeed's
 * stage 3 with fp16/bf16): each rank keeps its chunk of every parameter as 16-bit bit patterns (2Ψ/N, the
 * `ds_tensor` DeepSpeed all-gathers) beside the fp32 master chunk its optimizer steps (4Ψ/N, with Adam's
 * 8Ψ/N), and persistent (small) parameters as whole 16-bit copies on every rank, whose masters are
 * partitioned like the rest. After every optimizer step the masters are rounded into the 16-bit shards,
 * and the persistent copies are rebuilt by one 16-bit all-gather.
 */
import { type HalfFormat, narrow, type Parameter } from '@zeroflow/core';
import type { ParamSlot, Stage3Layout } from './layout.js';

/** 16-bit parameter shards and persistent copies of one rank; see the file comment. */
export class HalfShards {
  /** One per param group: this rank's 16-bit chunks, in the layout of the fp32 master shard. */
  readonly shards: Uint16Array[];
  /** Whole 16-bit values of the persistent parameters (every rank holds them). */
  readonly persistent = new Map<Parameter, Uint16Array>();

  constructor(
    readonly format: HalfFormat,
    layout: Stage3Layout,
  ) {
    this.shards = layout.partitions.map((p) => new Uint16Array(p.shardSize));
  }

  /** Rounds every fp32 master shard into the 16-bit shards (after a step, a load, init). */
  narrowAll(masters: readonly Float32Array[]): void {
    masters.forEach((m, g) => narrow(m, this.format, this.shards[g]));
  }

  /** Rounds one parameter's fp32 master chunk into its 16-bit chunk. */
  narrowChunk(s: ParamSlot, masterChunk: Float32Array): void {
    narrow(masterChunk, this.format, this.shards[s.group].subarray(s.shardOffset, s.shardOffset + s.chunk));
  }

  /** Sets a persistent parameter's whole 16-bit value from fp32 values (a value loaded from outside). */
  setPersistentFrom(p: Parameter, values: Float32Array): void {
    this.persistent.set(p, narrow(values, this.format, new Uint16Array(values.length)));
  }

  /** Bytes of the 16-bit shards. */
  get shardBytes(): number {
    return this.shards.reduce((a, s) => a + s.byteLength, 0);
  }

  /** Bytes of the persistent 16-bit copies. */
  get persistentBytes(): number {
    let n = 0;
    for (const v of this.persistent.values()) n += v.byteLength;
    return n;
  }
}
