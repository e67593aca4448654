import { describe, expect, it } from 'vitest';
import { ConfigError, closestMatch, editDistance, parseConfigText, s, validateWithSchema } from '../src/index.js';

describe('schema DSL', () => {
  const plugin = s.object({
    stage: s.integer({ min: 0, max: 3, default: 0 }),
    ratio: s.number({ gt: 0, lt: 1, default: 0.5 }),
    device: s.enum(['cpu', 'nvme'], { caseInsensitive: true, default: 'cpu' }),
    path: s.string().nullable().default(null),
    tags: s.array(s.string(), { maxLength: 2 }).default([]),
    pair: s.tuple<[number, boolean]>([s.number(), s.boolean()]).default([1, true]),
    weights: s.record(s.number({ min: 0 })).default({}),
    size: s.oneOf([s.integer({ min: 0 }), s.enum(['small', 'large'])]).default('small'),
  });

  it('fills defaults for a missing object', () => {
    const r = validateWithSchema(plugin, undefined, 'section');
    expect(r.issues).toEqual([]);
    expect(r.value).toEqual({
      stage: 0,
      ratio: 0.5,
      device: 'cpu',
      path: null,
      tags: [],
      pair: [1, true],
      weights: {},
      size: 'small',
    });
  });

  it('canonicalizes and validates values', () => {
    const r = validateWithSchema(plugin, { device: 'NVMe', size: 12, weights: { a: 1 } }, 'section');
    expect(r.value).toMatchObject({ device: 'nvme', size: 12, weights: { a: 1 } });
  });

  it('collects every issue with its path', () => {
    const r = validateWithSchema(
      plugin,
      { stage: 1.5, ratio: 1, devise: 'cpu', tags: ['a', 'b', 'c'], pair: [1, 'x'], weights: { a: -1 }, size: 'huge' },
      'section',
    );
    expect(r.value).toBeUndefined();
    const byPath = Object.fromEntries(r.issues.map((i) => [i.path, i]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        'section.devise',
        'section.pair[1]',
        'section.ratio',
        'section.size',
        'section.stage',
        'section.tags',
        'section.weights.a',
      ].sort(),
    );
    expect(byPath['section.devise'].suggestion).toBe('did you mean "device"?');
    expect(byPath['section.stage'].rule).toBe('must be an integer from 0 to 3');
    expect(byPath['section.ratio'].rule).toBe('must be a number > 0 and < 1');
    expect(byPath['section.size'].rule).toMatch(/an integer >= 0 or one of "small", "large"/);
  });

  it('reports required keys', () => {
    const schema = s.object({ lr: s.number({ gt: 0 }) });
    const r = validateWithSchema(schema, {}, 'opt');
    expect(r.issues).toEqual([{ path: 'opt.lr', value: undefined, rule: 'is required: must be a number > 0' }]);
  });

  it('resolves "auto" from autoValues, resolvers and defaults', () => {
    const schema = s.object({
      a: s.integer({ default: 1 }),
      b: s.auto(s.integer(), (ctx) => ctx.worldSize * 10),
      c: s.integer(),
    });
    const r = validateWithSchema(schema, { a: 'auto', b: 'auto', c: 'auto' }, '', {
      autoValues: { c: 7 },
      autoContext: { worldSize: 4 },
    });
    expect(r.value).toEqual({ a: 1, b: 40, c: 7 });
    const missing = validateWithSchema(schema, { c: 'auto' }, '');
    expect(missing.issues.map((i) => i.path)).toEqual(['b', 'c']);
  });

  it('supports aliases, hints and refine', () => {
    const schema = s.object(
      { low: s.number({ default: 0 }), high: s.number({ default: 1 }) },
      {
        aliases: { minimum: 'low' },
        hints: { max: 'use "high"' },
        refine(v, { issue }) {
          if (v.low > v.high) issue('low', v.low, `must be <= high (${v.high})`);
        },
      },
    );
    expect(validateWithSchema(schema, { minimum: 0.5 }).value).toEqual({ low: 0.5, high: 1 });
    expect(validateWithSchema(schema, { max: 3 }).issues[0].suggestion).toBe('use "high"');
    expect(validateWithSchema(schema, { low: 2 }).issues[0]).toMatchObject({
      path: 'low',
      rule: 'must be <= high (1)',
    });
  });

  it('validates tagged unions by their tag', () => {
    const schema = s.tagged(
      'kind',
      {
        Circle: s.object({ kind: s.enum(['Circle']), r: s.number({ gt: 0 }) }),
        Square: s.object({ kind: s.enum(['Square']), side: s.number({ gt: 0, default: 1 }) }),
      },
      { caseInsensitive: true },
    );
    expect(validateWithSchema(schema, { kind: 'square' }).value).toEqual({ kind: 'Square', side: 1 });
    expect(
      validateWithSchema(schema, { kind: 'Circle', side: 2 })
        .issues.map((i) => i.path)
        .sort(),
    ).toEqual(['r', 'side']);
    expect(validateWithSchema(schema, { kind: 'Circel' }).issues[0].suggestion).toBe('did you mean "Circle"?');
  });

  it('accepts unsupported sections only when disabled, and default-only options only at their default', () => {
    const schema = s.object({
      feature: s.unsupported('the feature'),
      knob: s.onlyDefault(s.boolean({ default: false }), 'the knob'),
    });
    expect(validateWithSchema(schema, { feature: { enabled: false, x: 1 }, knob: false }).value).toEqual({
      feature: null,
      knob: false,
    });
    const bad = validateWithSchema(schema, { feature: { enabled: true }, knob: true });
    expect(bad.issues.map((i) => i.rule)).toEqual([
      'the feature is not supported yet by ZeroFlow',
      'the knob is not supported yet by ZeroFlow',
    ]);
  });
});

describe('suggestions', () => {
  it('measures edit distance with transpositions', () => {
    expect(editDistance('stage', 'stage')).toBe(0);
    expect(editDistance('stgae', 'stage')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('finds close keys and ignores far ones', () => {
    const keys = ['train_batch_size', 'train_micro_batch_size_per_gpu', 'gradient_clipping'];
    expect(closestMatch('trainBatchSize', keys)).toBe('train_batch_size');
    expect(closestMatch('train_batch_sise', keys)).toBe('train_batch_size');
    expect(closestMatch('learning_rate', keys)).toBeUndefined();
  });
});

describe('parseConfigText (JSON with comments)', () => {
  it('accepts comments and trailing commas, respecting strings', () => {
    const text = `\ufeff{
      // line comment with "quotes" and /* not a block
      "path": "//host/share", /* block
      comment */ "glob": "a/*b*/c",
      "list": [1, 2, 3,],
      "escaped": "quote \\" // still a string",
      "nested": { "x": -1.5e3, "u": "\\u00e9", },
    }`;
    expect(parseConfigText(text)).toEqual({
      path: '//host/share',
      glob: 'a/*b*/c',
      list: [1, 2, 3],
      escaped: 'quote " // still a string',
      nested: { x: -1500, u: 'é' },
    });
  });

  it('keeps __proto__ as data', () => {
    const parsed = parseConfigText('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  const syntaxErrors: [string, string, RegExp][] = [
    ['{"a": 1 "b": 2}', 'cfg:1:9', /expected ',' or '}'/],
    ['{\n  "a": 1,\n  "a": 2\n}', 'cfg:3:3', /duplicate key "a"/],
    ["{'a': 1}", 'cfg:1:2', /expected a quoted key/],
    ['{"a": tru}', 'cfg:1:7', /expected a value/],
    ['{"a": 1} x', 'cfg:1:10', /unexpected content/],
    ['{"a": [1, 2}', 'cfg:1:12', /expected ',' or ']'/],
    ['{"a": 1 /* open', 'cfg:1:9', /unterminated \/\* comment/],
    ['{"a": "x', 'cfg:1:7', /unterminated string/],
    ['{"a": 01}', 'cfg:1:8', /expected ',' or '}'/],
    ['', 'cfg:1:1', /unexpected end of file/],
  ];

  it.each(syntaxErrors)('reports %j at %s', (text, path, rule) => {
    try {
      parseConfigText(text, 'cfg');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const issue = (err as ConfigError).issues[0];
      expect(issue.path).toBe(path);
      expect(issue.rule).toMatch(rule);
    }
  });
});
