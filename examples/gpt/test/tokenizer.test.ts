import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCorpus } from '../src/corpus.js';
import { loadOrTrainTokenizer } from '../src/data.js';
import { BpeTokenizer, pretokenize } from '../src/tokenizer.js';
import { decodeWtf8, encodeWtf8 } from '../src/wtf8.js';

/** Deterministic random strings mixing ASCII, accents, CJK, emoji (astral), whitespace and lone surrogates. */
function randomStrings(count: number, seed: number): string[] {
  let state = seed;
  const rand = (n: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  const alphabet = [
    ...'abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,;:!?\'"-()',
    ' ',
    '  ',
    '\n',
    '\t',
    '\r\n',
    'é',
    'ß',
    'ñ',
    '€',
    '中',
    '文',
    '日本',
    '😀',
    '👍🏽',
    '\u0301',
    '\u00a0',
    '\ud800',
    '\udfff',
    "'s",
    "'ll",
    '\u2028',
    '\u{10ffff}',
  ];
  return Array.from({ length: count }, () => {
    let s = '';
    const length = rand(60);
    for (let i = 0; i < length; i++) s += alphabet[rand(alphabet.length)];
    return s;
  });
}

const corpus = loadCorpus();
// A slice keeps training fast in tests; the full corpus is covered by one test below.
const sample = corpus.text.slice(0, 400_000);
const tokenizer = BpeTokenizer.train(sample, 1024);

describe('WTF-8', () => {
  it('equals UTF-8 for well-formed strings and round-trips lone surrogates', () => {
    for (const s of randomStrings(300, 1)) {
      const bytes = encodeWtf8(s);
      if (new TextDecoder().decode(new TextEncoder().encode(s)) === s) {
        expect(Buffer.from(bytes).equals(Buffer.from(new TextEncoder().encode(s)))).toBe(true);
      }
      expect(decodeWtf8(bytes)).toBe(s);
    }
  });

  it('decodes invalid bytes to U+FFFD like TextDecoder', () => {
    const cases = [
      [0xed, 0x9f, 0xbf],
      [0xe0, 0x9f, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf0, 0x9f, 0x98],
      [0xff],
      [0xc3],
      [0xe2, 0x82],
      [0x80, 0x41],
      [0xc0, 0xaf],
      [0xf5, 0x80, 0x80, 0x80],
      [0x61, 0xe2, 0x82, 0xac],
    ];
    for (const c of cases) {
      expect(decodeWtf8(Uint8Array.from(c))).toBe(new TextDecoder().decode(Uint8Array.from(c)));
    }
    // Fuzz with bytes around every boundary of the decoder; skip encoded surrogates, where WTF-8 differs on purpose.
    const interesting = [
      0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
    ];
    let state = 99;
    for (let n = 0; n < 5000; n++) {
      const length = n % 9;
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        bytes[i] = interesting[state % interesting.length];
      }
      if (bytes.some((b, i) => b === 0xed && i + 1 < length && bytes[i + 1] >= 0xa0 && bytes[i + 1] <= 0xbf)) continue;
      expect(decodeWtf8(bytes)).toBe(new TextDecoder().decode(bytes));
    }
  });
});

describe('BpeTokenizer', () => {
  it('learns merges exactly as BPE prescribes on a small text', () => {
    // Pieces: "ab" once, " ab" twice. (a,b) occurs 3 times -> 256; then (" ", 256) twice -> 257; then nothing repeats.
    const t = BpeTokenizer.train('ab ab ab', 300);
    expect(t.toJSON().merges).toEqual([
      [97, 98],
      [32, 256],
    ]);
    expect(t.vocabSize).toBe(258);
    expect(t.encode('ab ab')).toEqual([256, 257]);
    expect(t.encode('ba')).toEqual([98, 97]);
  });

  it('breaks ties by the smaller pair, so training is deterministic', () => {
    const t = BpeTokenizer.train('xy xy ab ab', 257);
    expect(t.toJSON().merges).toEqual([[32, 97]]); // (" ", "a"), (" ", "x"), (a,b), (x,y) all occur twice
    const a = BpeTokenizer.train(sample, 1024).toJSON();
    expect(a).toEqual(tokenizer.toJSON());
  });

  it('round-trips arbitrary text exactly', () => {
    for (const s of randomStrings(500, 7)) expect(tokenizer.decode(tokenizer.encode(s))).toBe(s);
    expect(tokenizer.decode(tokenizer.encode(''))).toBe('');
  });

  it('pre-tokenization covers every character', () => {
    for (const s of randomStrings(200, 3)) expect(pretokenize(s).join('')).toBe(s);
  });

  it('keeps ids inside the vocabulary and compresses English', () => {
    const text = corpus.text.slice(1_000_000, 1_100_000);
    const ids = tokenizer.encode(text);
    expect(Math.max(...ids)).toBeLessThan(tokenizer.vocabSize);
    expect(tokenizer.vocabSize).toBe(1024);
    expect(Buffer.byteLength(text) / ids.length).toBeGreaterThan(2.5);
    expect(tokenizer.encodeToInt32(text)).toEqual(Int32Array.from(ids));
  });

  it('saves and loads through JSON without changing encodings', () => {
    const loaded = BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(tokenizer)));
    const text = corpus.text.slice(2_000_000, 2_020_000);
    expect(loaded.encode(text)).toEqual(tokenizer.encode(text));
    expect(loaded.vocabSize).toBe(tokenizer.vocabSize);
    expect(() => BpeTokenizer.fromJSON({ format: 'other' })).toThrow(/not a zeroflow-byte-bpe/);
    expect(() => BpeTokenizer.fromJSON({ ...tokenizer.toJSON(), merges: [[300, 1]] })).toThrow(/not defined before/);
    expect(() => tokenizer.decode([tokenizer.vocabSize])).toThrow(RangeError);
  });

  it('encodes the whole corpus at vocabulary 4096 and decodes it back', () => {
    const full = BpeTokenizer.train(corpus.text, 4096);
    const ids = full.encodeToInt32(corpus.text);
    expect(full.decode(ids)).toBe(corpus.text);
    // Measured 3.59 bytes/token (GPT-2's 50k vocabulary: 4.64) on this corpus.
    expect(Buffer.byteLength(corpus.text) / ids.length).toBeGreaterThan(3.4);
  });
});

describe('loadOrTrainTokenizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zeroflow-bpe-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('trains once, then loads the cached file keyed by corpus hash and vocab size', () => {
    const first = loadOrTrainTokenizer(sample, 512, dir);
    expect(first.cached).toBe(false);
    const second = loadOrTrainTokenizer(sample, 512, dir);
    expect(second.cached).toBe(true);
    expect(second.path).toBe(first.path);
    expect(second.tokenizer.toJSON()).toEqual(first.tokenizer.toJSON());
    expect(loadOrTrainTokenizer(`${sample}!`, 512, dir).cached).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toHaveLength(2);
  });
});
