/** What comm.ts and its rank processes (comm-rank.ts) agree on. */

export type CollectiveName = 'allReduce' | 'reduceScatter' | 'allGather' | 'broadcast';
export const COLLECTIVES: readonly CollectiveName[] = ['allReduce', 'reduceScatter', 'allGather', 'broadcast'];

/** What a rank reports for one measurement: its own seconds per iteration (or per training step). */
export type RankResult =
  | { kind: 'collective'; rank: number; op: CollectiveName; bytes: number; seconds: number[] }
  | { kind: 'train'; rank: number; tokensPerStep: number; seconds: number[] };

/** Marks a rank's result lines on its stdout (everything else there is logging). */
export const RESULT_PREFIX = '@@result ';

/** The main example's model (examples/gpt/model.json), as train-gpt.ts measures it. */
export const GPT_EXAMPLE = { vocabSize: 2048, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128 };
export const MICRO_BATCH = 8;

/**
 * Bus bandwidth in bytes/s as nccl-tests defines it (doc/PERFORMANCE.md there), from the bytes of the full
 * buffer and the time: comparable across rank counts and with the link's raw bandwidth.
 */
export function busBandwidth(op: CollectiveName, bytes: number, ranks: number, seconds: number): number {
  const algo = bytes / seconds;
  if (op === 'allReduce') return ((2 * (ranks - 1)) / ranks) * algo;
  if (op === 'broadcast') return algo;
  return ((ranks - 1) / ranks) * algo;
}
