/** What zero.ts and its rank processes (zero-rank.ts) agree on. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The PyTorch peer's presets (../shared/peers/gpt_peer.py), micro-batch 8 per rank. */
export interface Preset {
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  micro: number;
}
export const PRESETS: Record<string, Preset> = {
  // 4.24 M parameters
  tiny: { vocabSize: 4096, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256, micro: 8 },
  // 91.4 M parameters
  small: { vocabSize: 8192, blockSize: 128, nLayer: 12, nHead: 12, nEmbd: 768, micro: 8 },
};

/** One rank's report of one run. */
export interface ZeroRankResult {
  rank: number;
  stage: number;
  params: number;
  tokensPerStep: number;
  /** Seconds of each measured step (after warm-up). */
  seconds: number[];
  /** engine.memoryReport() as the stage's owner reports it (bytes per category). */
  memory: Record<string, number>;
  /** parameters + gradients + optimizer of `memory`: what DESIGN.md 6's formula counts. */
  modelStateBytes: number;
  rssAfterGcBytes: number;
  peakRssBytes: number;
  plugins: string[];
}

/** Marks a rank's result line on its stdout (everything else there is logging). */
export const ZERO_PREFIX = '@@zero ';

/**
 * Imports `@zeroflow/zero-stage<stage>`: by name when this folder declares it, else from the workspace's
 * build (packages/zero-stage<stage>/dist), which resolves @zeroflow/core to the same files as ours. The
 * specifier is a variable on purpose: the benchmarks must type-check without these packages declared.
 */
export async function loadZeroPackage(stage: number): Promise<Record<string, unknown>> {
  const name = `@zeroflow/zero-stage${stage}`;
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw e;
  }
  const built = join(import.meta.dirname, '..', 'packages', `zero-stage${stage}`, 'dist', 'index.mjs');
  if (!existsSync(built)) throw new Error(`${name} is neither a dependency of benchmarks nor built at ${built}`);
  return (await import(pathToFileURL(built).href)) as Record<string, unknown>;
}
