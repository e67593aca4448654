/**
 * A byte-level BPE tokenizer (GPT-2's scheme) trained on the corpus itself, with a small vocabulary.
 *
 * Why not GPT-2's own 50,257-token vocabulary: for the tiny CPU model of the example, a 50k x d embedding and
 * softmax would dominate parameters and time; a 4k vocabulary trained on the corpus costs 12x less there and
 * compresses this corpus almost as well (see the README of this example for the measurement).
 *
 * Scheme: text is split by GPT-2's pre-tokenization pattern (words with their leading space, numbers,
 * punctuation runs, whitespace), each piece becomes its WTF-8 bytes (ids 0-255), and learned merges join
 * adjacent ids into new ids 256, 257, ... in the order they were learned. Merges never cross pieces. Every
 * string round-trips exactly, including unpaired surrogates (see wtf8.ts).
 */

import { decodeWtf8, encodeWtf8 } from './wtf8.js';

/** GPT-2's pre-tokenization pattern (tiktoken's `r50k_base`). It matches every character of any string. */
const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const FORMAT = 'zeroflow-byte-bpe';
const MAX_CACHED_PIECES = 1 << 18;
const FORMAT_VERSION = 1;

/** Serialized tokenizer (`toJSON`/`fromJSON`): the merges in learned order are the whole model. */
export interface BpeTokenizerJson {
  format: typeof FORMAT;
  version: number;
  /** Pre-tokenization regex source, kept so that a file from another pattern is refused, not misread. */
  pattern: string;
  /** Merge i joins ids merges[i][0] and merges[i][1] into id 256 + i. */
  merges: [number, number][];
}

// A pair of ids packed into one number: ids stay below 2^21, so a * 2^21 + b is an exact double.
const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

/** Splits text into GPT-2 pre-tokens (exported for tests). */
export function pretokenize(text: string): string[] {
  return text.match(PRETOKENIZE) ?? [];
}

/** Max-heap of (count, pair) with lazy deletion; ties go to the smaller pair key, so training is deterministic. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.keys.length && this.above(l, best)) best = l;
        if (r < this.keys.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Byte-level BPE tokenizer: train on text, encode, decode, save and load. */
export class BpeTokenizer {
  /** Number of token ids: 256 byte ids plus one per merge. */
  readonly vocabSize: number;
  private readonly merges: [number, number][];
  private readonly rankOfPair = new Map<number, number>();
  private readonly tokenBytes: Uint8Array[] = [];
  // Encoding a corpus meets the same words over and over: remember each piece's ids.
  private readonly pieceCache = new Map<string, number[]>();

  private constructor(merges: [number, number][]) {
    this.merges = merges;
    for (let b = 0; b < 256; b++) this.tokenBytes.push(Uint8Array.of(b));
    merges.forEach(([a, b], rank) => {
      const id = 256 + rank;
      if (!(a < id && b < id && a >= 0 && b >= 0 && Number.isInteger(a) && Number.isInteger(b))) {
        throw new Error(`BPE merge ${rank} = [${a}, ${b}] refers to an id not defined before it: corrupt tokenizer`);
      }
      this.rankOfPair.set(pairKey(a, b), rank);
      const joined = new Uint8Array(this.tokenBytes[a].length + this.tokenBytes[b].length);
      joined.set(this.tokenBytes[a]);
      joined.set(this.tokenBytes[b], this.tokenBytes[a].length);
      this.tokenBytes.push(joined);
    });
    this.vocabSize = 256 + merges.length;
  }

  /**
   * Learns merges from `text` until the vocabulary has `vocabSize` ids (or no pair occurs twice).
   * Deterministic: the most frequent pair wins, ties go to the smallest (left id, right id).
   */
  static train(text: string, vocabSize: number): BpeTokenizer {
    if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize >= PAIR_SHIFT) {
      throw new RangeError(`vocabSize must be an integer in [256, ${PAIR_SHIFT}), got ${vocabSize}`);
    }
    // Count distinct pieces: merges only happen inside a piece, so training works on piece types.
    const pieceCounts = new Map<string, number>();
    for (const piece of pretokenize(text)) pieceCounts.set(piece, (pieceCounts.get(piece) ?? 0) + 1);
    const words: number[][] = [];
    const freqs: number[] = [];
    for (const [piece, count] of pieceCounts) {
      words.push(Array.from(encodeWtf8(piece)));
      freqs.push(count);
    }

    const pairCounts = new Map<number, number>();
    const pairWords = new Map<number, Set<number>>(); // pair -> words that may contain it (never pruned)
    const heap = new PairHeap();
    const addPairs = (w: number, sign: 1 | -1, touched: Set<number>) => {
      const word = words[w];
      for (let i = 0; i + 1 < word.length; i++) {
        const key = pairKey(word[i], word[i + 1]);
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * freqs[w]);
        touched.add(key);
        if (sign === 1) {
          let set = pairWords.get(key);
          if (set === undefined) pairWords.set(key, (set = new Set()));
          set.add(w);
        }
      }
    };
    const initial = new Set<number>();
    for (let w = 0; w < words.length; w++) addPairs(w, 1, initial);
    for (const key of initial) heap.push(pairCounts.get(key)!, key);

    const merges: [number, number][] = [];
    while (256 + merges.length < vocabSize && heap.size > 0) {
      const { count, key } = heap.pop();
      if (pairCounts.get(key) !== count) continue; // stale heap entry
      if (count < 2) break; // merging pairs seen once only memorizes
      const a = Math.floor(key / PAIR_SHIFT);
      const b = key - a * PAIR_SHIFT;
      const id = 256 + merges.length;
      merges.push([a, b]);
      const touched = new Set<number>();
      for (const w of pairWords.get(key)!) {
        const word = words[w];
        let found = false;
        for (let i = 0; i + 1 < word.length; i++) {
          if (word[i] === a && word[i + 1] === b) {
            found = true;
            break;
          }
        }
        if (!found) continue;
        addPairs(w, -1, touched);
        const merged: number[] = [];
        for (let i = 0; i < word.length; i++) {
          if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
            merged.push(id);
            i++;
          } else {
            merged.push(word[i]);
          }
        }
        words[w] = merged;
        addPairs(w, 1, touched);
      }
      pairWords.delete(key);
      for (const k of touched) {
        const c = pairCounts.get(k)!;
        if (c > 0) heap.push(c, k);
        else pairCounts.delete(k);
      }
    }
    return new BpeTokenizer(merges);
  }

  /** Token ids of `text`; `decode(encode(text)) === text` for every string. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of pretokenize(text)) {
      for (const id of this.encodePiece(piece)) ids.push(id);
    }
    return ids;
  }

  /** Like `encode`, straight into an Int32Array (the dataset's format). */
  encodeToInt32(text: string): Int32Array {
    const out: number[] = [];
    for (const piece of pretokenize(text)) {
      for (const id of this.encodePiece(piece)) out.push(id);
    }
    return Int32Array.from(out);
  }

  /** Text of token ids. Byte sequences that are not valid UTF-8 (a model may sample them) become U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    let length = 0;
    for (let i = 0; i < ids.length; i++) length += this.bytesOf(ids[i]).length;
    const bytes = new Uint8Array(length);
    let offset = 0;
    for (let i = 0; i < ids.length; i++) {
      const tokenBytes = this.bytesOf(ids[i]);
      bytes.set(tokenBytes, offset);
      offset += tokenBytes.length;
    }
    return decodeWtf8(bytes);
  }

  /** The raw bytes of one token id (for inspecting the vocabulary). */
  bytesOf(id: number): Uint8Array {
    const bytes = this.tokenBytes[id];
    if (bytes === undefined) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    return bytes;
  }

  /** Serializable form; `BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(t)))` encodes exactly as `t`. */
  toJSON(): BpeTokenizerJson {
    return {
      format: FORMAT,
      version: FORMAT_VERSION,
      pattern: PRETOKENIZE.source,
      merges: this.merges.map(([a, b]) => [a, b]),
    };
  }

  /** Loads a tokenizer saved by `toJSON`. Throws on another format, version or pre-tokenization pattern. */
  static fromJSON(json: unknown): BpeTokenizer {
    const j = json as Partial<BpeTokenizerJson> | null;
    if (j === null || typeof j !== 'object' || j.format !== FORMAT || !Array.isArray(j.merges)) {
      throw new Error(`not a ${FORMAT} tokenizer file (expected {format: "${FORMAT}", merges: [...]})`);
    }
    if (j.version !== FORMAT_VERSION || j.pattern !== PRETOKENIZE.source) {
      throw new Error(`tokenizer file has version ${j.version} / another pre-tokenization pattern: retrain it`);
    }
    return new BpeTokenizer(j.merges.map((m) => [Number(m[0]), Number(m[1])] as [number, number]));
  }

  private encodePiece(piece: string): number[] {
    const cached = this.pieceCache.get(piece);
    if (cached !== undefined) return cached;
    let word = Array.from(encodeWtf8(piece));
    // Apply the earliest-learned merge present, all its occurrences, until none applies (GPT-2's bpe()).
    while (word.length > 1) {
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.rankOfPair.get(pairKey(word[i], word[i + 1]));
        if (rank !== undefined && rank < bestRank) bestRank = rank;
      }
      if (bestRank === Number.POSITIVE_INFINITY) break;
      const [a, b] = this.merges[bestRank];
      const id = 256 + bestRank;
      const merged: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          merged.push(id);
          i++;
        } else {
          merged.push(word[i]);
        }
      }
      word = merged;
    }
    // Long unique pieces (random test strings, base64) would grow the cache without bound: keep short ones.
    if (piece.length <= 64) {
      if (this.pieceCache.size >= MAX_CACHED_PIECES) this.pieceCache.clear();
      this.pieceCache.set(piece, word);
    }
    return word;
  }
}
