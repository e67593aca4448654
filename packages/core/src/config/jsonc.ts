/**
 * A small JSON-with-comments parser for config files: JSON plus `//` and `/* *\/` comments and trailing commas
 * (what VS Code calls JSONC). Written by hand rather than stripping comments with a regex, because a regex
 * cannot tell a `//` inside a string (`"nvme_path": "//mnt/nvme"`) from a comment, and because a hand-written
 * parser can say where a syntax error is (line and column) and reject duplicate keys, which JSON.parse
 * silently resolves to the last one.
 */
import { ConfigError } from '../errors.js';

/** A JSON value as read from a config file. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

class JsoncSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly found: string,
  ) {
    super(message);
  }
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER_PATTERN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class JsoncParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    // A UTF-8 byte order mark is common in files written on Windows.
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    this.skipTrivia();
    const value = this.parseValue();
    this.skipTrivia();
    if (this.pos < this.text.length) this.fail('unexpected content after the end of the document');
    return value;
  }

  private fail(message: string, at = this.pos): never {
    if (at >= this.text.length) {
      const text = message.startsWith('unexpected end of file') ? message : `unexpected end of file, ${message}`;
      throw new JsoncSyntaxError(text, at, '<end of file>');
    }
    throw new JsoncSyntaxError(message, at, this.text.slice(at, at + 12).split('\n')[0]);
  }

  /** Skips whitespace and comments. */
  private skipTrivia(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
        this.pos++;
      } else if (c === '/' && t[this.pos + 1] === '/') {
        while (this.pos < t.length && t[this.pos] !== '\n') this.pos++;
      } else if (c === '/' && t[this.pos + 1] === '*') {
        const end = t.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated /* comment');
        this.pos = end + 2;
      } else {
        return;
      }
    }
  }

  private parseValue(): JsonValue {
    const c = this.text[this.pos];
    if (c === '{') return this.parseObject();
    if (c === '[') return this.parseArray();
    if (c === '"') return this.parseString();
    if (c === '-' || (c >= '0' && c <= '9')) return this.parseNumber();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    if (c === "'") this.fail('strings must use double quotes');
    if (c === undefined) this.fail('unexpected end of file, expected a value');
    return this.fail('expected a value (object, array, string, number, true, false or null)');
  }

  private parseObject(): JsonValue {
    const result: { [key: string]: JsonValue } = {};
    const seen = new Set<string>();
    this.pos++; // '{'
    this.skipTrivia();
    while (this.text[this.pos] !== '}') {
      if (this.text[this.pos] !== '"') {
        this.fail(this.pos >= this.text.length ? "unexpected end of file, expected '}'" : 'expected a quoted key');
      }
      const keyAt = this.pos;
      const key = this.parseString();
      if (seen.has(key)) this.fail(`duplicate key "${key}"`, keyAt);
      seen.add(key);
      this.skipTrivia();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after key "${key}"`);
      this.pos++;
      this.skipTrivia();
      // defineProperty, not assignment: a "__proto__" key must become data, never the object's prototype.
      Object.defineProperty(result, key, {
        value: this.parseValue(),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.skipTrivia();
      if (this.text[this.pos] === ',') {
        this.pos++;
        this.skipTrivia(); // a trailing comma before '}' is allowed
      } else if (this.text[this.pos] !== '}') {
        this.fail("expected ',' or '}'");
      }
    }
    this.pos++; // '}'
    return result;
  }

  private parseArray(): JsonValue {
    const result: JsonValue[] = [];
    this.pos++; // '['
    this.skipTrivia();
    while (this.text[this.pos] !== ']') {
      if (this.pos >= this.text.length) this.fail("unexpected end of file, expected ']'");
      result.push(this.parseValue());
      this.skipTrivia();
      if (this.text[this.pos] === ',') {
        this.pos++;
        this.skipTrivia();
      } else if (this.text[this.pos] !== ']') {
        this.fail("expected ',' or ']'");
      }
    }
    this.pos++; // ']'
    return result;
  }

  private parseString(): string {
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    const t = this.text;
    while (true) {
      if (this.pos >= t.length) this.fail('unterminated string', start);
      const c = t[this.pos];
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === '\n' || c < ' ') this.fail('control character or line break inside a string');
      if (c === '\\') {
        const e = t[this.pos + 1];
        if (e === 'u') {
          const hex = t.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape');
          out += String.fromCharCode(Number.parseInt(hex, 16));
          this.pos += 6;
        } else if (e !== undefined && e in ESCAPES) {
          out += ESCAPES[e];
          this.pos += 2;
        } else {
          this.fail('invalid escape sequence');
        }
      } else {
        out += c;
        this.pos++;
      }
    }
  }

  private parseNumber(): number {
    NUMBER_PATTERN.lastIndex = this.pos;
    const match = NUMBER_PATTERN.exec(this.text);
    if (!match) this.fail('invalid number');
    this.pos += match[0].length;
    return Number(match[0]);
  }
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Parses the text of a config file: JSON with `//` and `/* *\/` comments and trailing commas.
 * A syntax error or duplicate key throws a {@link ConfigError} whose issue path is `source:line:column`.
 *
 * @param text - the file's contents
 * @param sourceName - shown in errors, usually the file path
 */
export function parseConfigText(text: string, sourceName = '<config>'): JsonValue {
  try {
    return new JsoncParser(text).parseDocument();
  } catch (err) {
    if (!(err instanceof JsoncSyntaxError)) throw err;
    const { line, column } = lineAndColumn(text, err.offset);
    throw new ConfigError({
      path: `${sourceName}:${line}:${column}`,
      value: err.found,
      rule: `JSON syntax error: ${err.message}`,
    });
  }
}
