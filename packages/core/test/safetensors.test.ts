import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../src/errors.js';
import {
  encodeSafetensors,
  readSafetensors,
  readSafetensorsFile,
  type SafetensorsTensor,
  safetensorToFloat32,
  writeSafetensors,
} from '../src/io/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zf-safetensors-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Odd sizes on purpose: the F32 tensor after a 3-byte U8 tensor starts at an unaligned file offset. */
function sample(): Record<string, SafetensorsTensor> {
  return {
    flags: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 0, 255]) },
    'h.0.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1.5, -2, 3.25, 0, 1e-30, -7]) },
    ids: { dtype: 'I32', shape: [2, 2], data: new Int32Array([-1, 2, 2147483647, -2147483648]) },
    half: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xc040]) }, // 1.0, -3.0
    fp16: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x0001]) }, // 1, -2, 2^-24
    big: { dtype: 'I64', shape: [2], data: new BigInt64Array([-5n, 1n << 40n]) },
    scalar: { dtype: 'F64', shape: [], data: new Float64Array([Math.PI]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

function headerOf(bytes: Uint8Array): { len: number; json: Record<string, any> } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { len, json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))) };
}

describe('safetensors', () => {
  it('round-trips every dtype through a file, with metadata, keeping order and alignment', () => {
    const file = path.join(dir, 'rt.safetensors');
    writeSafetensors(file, sample(), { format: 'pt', step: '7' });
    const { tensors, metadata } = readSafetensorsFile(file);
    expect(metadata).toEqual({ format: 'pt', step: '7' });
    expect([...tensors.keys()]).toEqual(Object.keys(sample()));
    for (const [name, want] of Object.entries(sample())) {
      const got = tensors.get(name)!;
      expect(got.dtype, name).toBe(want.dtype);
      expect(got.shape, name).toEqual(want.shape);
      expect(got.data.constructor, name).toBe(want.data.constructor);
      expect(Array.from(got.data as ArrayLike<unknown>), name).toEqual(Array.from(want.data as ArrayLike<unknown>));
    }
    expect(safetensorToFloat32(tensors.get('half')!)).toEqual(new Float32Array([1, -3]));
    expect(safetensorToFloat32(tensors.get('fp16')!)).toEqual(new Float32Array([1, -2, 2 ** -24]));
    // The same bytes in memory.
    const bytes = fs.readFileSync(file);
    expect(Buffer.from(encodeSafetensors(sample(), { format: 'pt', step: '7' })).equals(bytes)).toBe(true);
    expect(readSafetensors(new Uint8Array(bytes)).get('h.0.weight')!.data).toEqual(sample()['h.0.weight'].data);
  });

  it('writes the standard layout: LE length, space-padded JSON header, data_offsets', () => {
    const bytes = encodeSafetensors(sample(), { format: 'pt' });
    const { len, json } = headerOf(bytes);
    expect(len % 8).toBe(0);
    expect(json.__metadata__).toEqual({ format: 'pt' });
    expect(json.flags).toEqual({ dtype: 'U8', shape: [3], data_offsets: [0, 3] });
    expect(json['h.0.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [3, 27] });
    const tail = new TextDecoder().decode(bytes.subarray(8, 8 + len));
    expect(/^ *$/.test(tail.slice(tail.lastIndexOf('}') + 1))).toBe(true);
    // F32 values start at data offset 3 (file offset 8 + len + 3): unaligned, so reading must copy.
    const f32 = new Float32Array(bytes.slice(8 + len + 3, 8 + len + 27).buffer);
    expect(f32).toEqual(sample()['h.0.weight'].data);
  });

  it('reads a file written by PyTorch (the parity fixtures)', () => {
    const fixture = path.resolve(__dirname, '../../../../shared/fixtures/gpt2-tiny/model.safetensors');
    const { tensors, metadata } = readSafetensorsFile(fixture);
    expect(metadata.format).toBe('pt');
    const wte = tensors.get('transformer.wte.weight')!;
    expect(wte.dtype).toBe('F32');
    expect(wte.shape).toEqual([256, 64]);
    expect((wte.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('names the file and says "truncated" when the data section is cut short', () => {
    const full = encodeSafetensors(sample());
    const file = path.join(dir, 'truncated.safetensors');
    fs.writeFileSync(file, full.subarray(0, full.byteLength - 5));
    expect(() => readSafetensors(file)).toThrow(CheckpointError);
    expect(() => readSafetensors(file)).toThrow(/truncated\.safetensors: truncated safetensors file: tensor "\w+"/);
    // Cut inside the header, and before the length itself.
    expect(() => readSafetensors(full.subarray(0, 20))).toThrow(/truncated.*header declares/);
    expect(() => readSafetensors(full.subarray(0, 5))).toThrow(/truncated.*8-byte header length/);
  });

  it('rejects corrupted headers with a clear CheckpointError', () => {
    const make = (header: string, dataBytes = 0): Uint8Array => {
      const enc = new TextEncoder().encode(header);
      const out = new Uint8Array(8 + enc.byteLength + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(enc.byteLength), true);
      out.set(enc, 8);
      return out;
    };
    const cases: [Uint8Array, RegExp][] = [
      [make('{"a": {"dtype": "F32", '), /not valid UTF-8 JSON/],
      [make('[1,2]'), /must be an object/],
      [make('{"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}', 4), /"a" has unknown dtype "F99"/],
      [
        make('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', 4),
        /"a" spans 4 bytes but F32\[2\] needs 8/,
      ],
      [make('{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', 4), /invalid shape/],
      [make('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', 4), /invalid data_offsets/],
      [
        make(
          '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}',
          6,
        ),
        /overlaps/,
      ],
      [make('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 9), /5 bytes after the last tensor/],
      [make('{"__metadata__": {"x": 1}}'), /__metadata__\.x is not a string/],
    ];
    for (const [bytes, msg] of cases) {
      expect(() => readSafetensors(bytes)).toThrow(CheckpointError);
      expect(() => readSafetensors(bytes)).toThrow(msg);
    }
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge)).toThrow(/declared header length/);
    expect(() => readSafetensors(path.join(dir, 'missing.safetensors'))).toThrow(/missing\.safetensors: cannot open/);
  });

  it('refuses to write inconsistent tensors', () => {
    const file = path.join(dir, 'bad.safetensors');
    expect(() => writeSafetensors(file, { a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(
      /shape \[3\] but 2 elements/,
    );
    expect(() =>
      writeSafetensors(file, { a: { dtype: 'F32', shape: [2], data: new Int32Array(2) as unknown as Float32Array } }),
    ).toThrow(/data of type Int32Array/);
  });
});
