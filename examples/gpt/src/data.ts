/**
 * The data side of the GPT example: corpus, tokenizer cache, train/validation split, batch sampling.
 *
 * ```ts
 * const data = prepareData({ vocabSize: 4096, blockSize: 256, valFraction: 0.05 });
 * const sampler = new BatchSampler({ tokens: data.train, blockSize: 256, microBatchSize: 8, rank, worldSize });
 * const { inputIds, targets } = sampler.next();
 * ```
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Corpus, loadCorpus } from './corpus.js';
import { BpeTokenizer } from './tokenizer.js';

export { type Corpus, loadCorpus } from './corpus.js';
export {
  BatchSampler,
  type BatchSamplerOptions,
  type EvalBatchOptions,
  evalBatches,
  type MicroBatch,
  type PlacedMicroBatch,
  type SamplerState,
} from './sampler.js';
export { BpeTokenizer, type BpeTokenizerJson } from './tokenizer.js';

/** `examples/gpt/runs/`: where tokenizers are cached (git-ignored). */
export const DEFAULT_RUNS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'runs');

/** Options of `buildDataset`. */
export interface DatasetOptions {
  /** Share of the tokens held out for validation, in [0, 1); default 0.1. */
  valFraction?: number;
  /** Length of the segments dealt to train or validation; default 16 * blockSize. */
  segmentLength?: number;
}

/** A train/validation split of one token stream. */
export interface Dataset {
  train: Int32Array;
  val: Int32Array;
}

/**
 * Splits a token stream into train and validation streams.
 *
 * Why not "the last 10%": the Brown Corpus is ordered by genre, so a tail split would validate on fiction only.
 * The stream is cut into segments of `segmentLength` tokens and segment i goes to validation exactly when
 * floor((i + 1) * f) > floor(i * f): an evenly spread, deterministic share f of the corpus. Each split is the
 * concatenation of its segments.
 */
export function buildDataset(tokens: Int32Array, blockSize: number, options: DatasetOptions = {}): Dataset {
  const valFraction = options.valFraction ?? 0.1;
  const segmentLength = options.segmentLength ?? 16 * blockSize;
  if (!(Number.isInteger(blockSize) && blockSize >= 1))
    throw new RangeError(`blockSize must be an integer >= 1, got ${blockSize}`);
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}`);
  if (!(Number.isInteger(segmentLength) && segmentLength > blockSize)) {
    throw new RangeError(`segmentLength must be an integer > blockSize (${blockSize}), got ${segmentLength}`);
  }
  const segments = Math.ceil(tokens.length / segmentLength);
  const toVal = (i: number) => Math.floor((i + 1) * valFraction) > Math.floor(i * valFraction);
  let valLength = 0;
  for (let i = 0; i < segments; i++) {
    if (toVal(i)) valLength += Math.min(segmentLength, tokens.length - i * segmentLength);
  }
  const train = new Int32Array(tokens.length - valLength);
  const val = new Int32Array(valLength);
  let t = 0;
  let v = 0;
  for (let i = 0; i < segments; i++) {
    const segment = tokens.subarray(i * segmentLength, Math.min(tokens.length, (i + 1) * segmentLength));
    if (toVal(i)) {
      val.set(segment, v);
      v += segment.length;
    } else {
      train.set(segment, t);
      t += segment.length;
    }
  }
  const need = 2 * blockSize;
  if (train.length < need || (valFraction > 0 && val.length < need)) {
    throw new RangeError(
      `split of ${tokens.length} tokens gives train ${train.length} / val ${val.length} tokens; each needs at least ${need} (2 * blockSize): use more data or a smaller blockSize`,
    );
  }
  return { train, val };
}

/** First 16 hex digits of the SHA-256 of a text: the corpus key of cached tokenizers. */
export function textHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);
}

/**
 * The tokenizer trained on `text` with `vocabSize` ids, from `<cacheDir>/tokenizer-<hash>-v<vocabSize>.json`
 * when present, else trained (about 1.3 s for the Brown Corpus at 4096) and saved there. Written to a temporary
 * name and renamed, so ranks that train at once never read a half-written file.
 */
export function loadOrTrainTokenizer(
  text: string,
  vocabSize: number,
  cacheDir: string = DEFAULT_RUNS_DIR,
): { tokenizer: BpeTokenizer; path: string; cached: boolean } {
  const path = join(cacheDir, `tokenizer-${textHash(text)}-v${vocabSize}.json`);
  if (existsSync(path)) {
    try {
      return { tokenizer: BpeTokenizer.fromJSON(JSON.parse(readFileSync(path, 'utf8'))), path, cached: true };
    } catch {
      // A file from another format version: fall through and overwrite it.
    }
  }
  const tokenizer = BpeTokenizer.train(text, vocabSize);
  mkdirSync(cacheDir, { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(tokenizer.toJSON()));
  renameSync(temporary, path);
  return { tokenizer, path, cached: false };
}

/** Options of `prepareData`. */
export interface PrepareDataOptions extends DatasetOptions {
  /** Tokenizer vocabulary size; default 4096. */
  vocabSize?: number;
  blockSize: number;
  /** Where the tokenizer is cached; default `examples/gpt/runs/`. */
  cacheDir?: string;
}

/** Everything a training script needs from the data side. */
export interface PreparedData extends Dataset {
  corpus: Corpus;
  tokenizer: BpeTokenizer;
  /** Path of the cached tokenizer file. */
  tokenizerPath: string;
  /** Tokens in the whole corpus. */
  numTokens: number;
}

/** Loads the corpus, gets its tokenizer (cached), encodes the corpus and splits it. Deterministic. */
export function prepareData(options: PrepareDataOptions): PreparedData {
  const corpus = loadCorpus();
  const { tokenizer, path } = loadOrTrainTokenizer(corpus.text, options.vocabSize ?? 4096, options.cacheDir);
  const tokens = tokenizer.encodeToInt32(corpus.text);
  const { train, val } = buildDataset(tokens, options.blockSize, options);
  return { corpus, tokenizer, tokenizerPath: path, numTokens: tokens.length, train, val };
}
