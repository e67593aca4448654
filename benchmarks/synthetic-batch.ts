/**
 * The deterministic token batches every GPT benchmark trains on (and the PyTorch peer's shape): ids from a
 * multiplicative hash of the position and the seed, each target a fixed function of its id, so that a loss
 * exists to descend and every run, rank and backend sees the same data for the same seed.
 */
export interface SyntheticBatch {
  inputIds: Int32Array;
  targets: Int32Array;
  shape: [number, number];
}

/** `micro` sequences of `seqLen` tokens below `vocab`, for `seed` (e.g. step * worldSize + rank). */
export function syntheticBatch(micro: number, seqLen: number, vocab: number, seed: number): SyntheticBatch {
  const inputIds = new Int32Array(micro * seqLen);
  const targets = new Int32Array(inputIds.length);
  for (let i = 0; i < inputIds.length; i++) {
    inputIds[i] = (i * 2654435761 + seed * 97) % vocab;
    targets[i] = (inputIds[i] * 31 + 7) % vocab;
  }
  return { inputIds, targets, shape: [micro, seqLen] };
}
