/**
 * One stage-3 all-gather: this rank's chunks of some parameters behind a header (the id of those
 * parameters: one fp32 element, or two 16-bit elements when the shards are 16-bit under amp, so a gather
 * moves half of fp32's bytes), issued without blocking and completed later. Completing checks every rank's header,
 * so ranks whose forward/backward took different paths fail with an error that says so instead of mixing
 * up weights, and unpacks the full values.
 */
import {
  CommError,
  dtypeOpts,
  type FlatBuffer,
  type HalfFormat,
  type Module,
  type ProcessGroup,
  type Work,
  ZeroFlowError,
} from '@zeroflow/core';
import type { ParamSlot } from './layout.js';
import { elementsOf, type GatherStaging, StagingPool } from './trace.js';

/** Headers are float32: ids stay below 2^24, where every integer is exact. */
const ID_MODULUS = 16_777_213;

function gatherId(slots: readonly ParamSlot[]): number {
  let h = 7;
  for (const s of slots) h = (h * 31 + s.index + 1) % ID_MODULUS;
  return h;
}

/** One launched all-gather. */
export interface PendingGather {
  slots: readonly ParamSlot[];
  elements: number;
  block: number;
  id: number;
  staging: GatherStaging;
  work: Work | null;
  leaf?: Module;
}

/** Issues and completes headered all-gathers of parameter chunks from the shards. */
export class HeaderedAllGather {
  private readonly staging: StagingPool;
  /** Header elements: one fp32 (ids below 2^24 are exact) or two 16-bit halves of the id. */
  private readonly headerLength: number;

  /**
   * @param shards one per param group: this rank's parameter shard, fp32, or 16-bit bit patterns of `format`
   * @param format the 16-bit format of `shards` (amp), or null for fp32 shards
   */
  constructor(
    private readonly comm: ProcessGroup | null,
    private readonly shards: FlatBuffer[],
    private readonly format: HalfFormat | null = null,
  ) {
    this.staging = new StagingPool(format !== null);
    this.headerLength = format ? 2 : 1;
  }

  private readHeader(output: FlatBuffer, at: number): number {
    return this.format ? output[at] + output[at + 1] * 65536 : output[at];
  }

  /** Bytes of staging buffers allocated so far. */
  get stagingBytes(): number {
    return this.staging.bytes;
  }

  private what(slots: readonly ParamSlot[], leaf?: Module): string {
    return `${slots.map((s) => s.name).join(', ')}${leaf ? ` (leaf ${leaf.constructor.name})` : ''}`;
  }

  /** Issues the all-gather of `slots` with its header (non-blocking). */
  launch(slots: readonly ParamSlot[], leaf: Module | undefined): PendingGather {
    const n = this.comm?.size ?? 1;
    const h = this.headerLength;
    const block = h + slots.reduce((a, s) => a + s.chunk, 0);
    const staging = this.staging.take(block, n);
    const id = gatherId(slots);
    if (this.format) {
      staging.input[0] = id % 65536;
      staging.input[1] = Math.floor(id / 65536);
    } else staging.input[0] = id;
    let o = h;
    for (const s of slots) {
      // same element type on both sides (fp32 shards into fp32 staging, 16-bit into 16-bit)
      (staging.input as Float32Array).set(
        this.shards[s.group].subarray(s.shardOffset, s.shardOffset + s.chunk) as Float32Array,
        o,
      );
      o += s.chunk;
    }
    let work: Work | null = null;
    if (this.comm) {
      try {
        work = this.format
          ? this.comm.allGather(staging.output, staging.input, dtypeOpts(staging.input, this.format))
          : this.comm.allGather(staging.output, staging.input);
      } catch (e) {
        this.staging.give(staging);
        throw this.commFailure(e, slots, leaf);
      }
    } else staging.output.set(staging.input);
    return { slots, elements: elementsOf(slots), block, id, staging, work, leaf };
  }

  /**
   * Waits for a launched gather, checks every rank's header, and unpacks the full values (fp32 arrays from
   * `alloc`, or the 16-bit bit patterns under amp: the caller widens them just in time).
   */
  complete(p: PendingGather, alloc: (length: number) => Float32Array = (n) => new Float32Array(n)): FlatBuffer[] {
    const { slots, block, id, staging, leaf } = p;
    const n = this.comm?.size ?? 1;
    const output = staging.output;
    try {
      if (p.work) {
        try {
          p.work.wait();
        } catch (e) {
          throw this.commFailure(e, slots, leaf);
        }
        const ids = Array.from({ length: n }, (_, q) => this.readHeader(output, q * block));
        if (ids.some((x) => x !== id)) {
          throw new ZeroFlowError(
            `ZeRO-3: ranks gathered different parameters at the same point (gather ids by rank: ${ids.join(', ')}; this rank wanted ${this.what(slots, leaf)}): their forward/backward took different paths. Stage 3 needs the same control flow (the same leaf layers in the same order) on every data-parallel rank`,
          );
        }
      }
      let off = this.headerLength;
      return slots.map((s) => {
        const full = this.format ? new Uint16Array(s.param.size) : alloc(s.param.size);
        for (let q = 0; q < n; q++) {
          const start = q * s.chunk;
          const len = Math.min(s.chunk, full.length - start);
          if (len > 0) full.set(output.subarray(q * block + off, q * block + off + len) as Float32Array, start);
        }
        off += s.chunk;
        return full;
      });
    } finally {
      this.staging.give(staging);
    }
  }

  private commFailure(e: unknown, slots: readonly ParamSlot[], leaf?: Module): unknown {
    if (!(e instanceof CommError)) return e;
    return new ZeroFlowError(
      `ZeRO-3: the all-gather of ${this.what(slots, leaf)} failed on this rank (${e.message}). When ranks disagree on which parameters to gather, their forward/backward took different paths: stage 3 needs the same control flow (the same leaf layers in the same order) on every data-parallel rank`,
    );
  }
}
