/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`,
 * padded with spaces to a multiple of 8), then the tensor bytes, little-endian, offsets relative to the end of
 * the header. Hugging Face checkpoints and ZeroFlow's own shard files use it.
 *
 * Reading copies every tensor into its own typed array: views into a file buffer would be misaligned (an
 * F32 tensor may start at any byte) and would pin the whole file in memory.
 */
import * as fs from 'node:fs';
import { CheckpointError } from '../errors.js';

/** Element types of the format. F16/BF16 (and F8) have no JS array type: they are stored as raw bits. */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

/** The array type that holds each dtype (F16/BF16 as their 16 raw bits, BOOL as 0/1 bytes). */
export interface SafetensorsArrayTypes {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
  F8_E4M3: Uint8Array;
  F8_E5M2: Uint8Array;
}

/** Any typed array a safetensors tensor can live in. */
export type SafetensorsData = SafetensorsArrayTypes[SafetensorsDtype];

/** One tensor: dtype, shape (`[]` for a scalar) and its elements in row-major order. */
export interface SafetensorsTensor<D extends SafetensorsDtype = SafetensorsDtype> {
  dtype: D;
  shape: number[];
  data: SafetensorsArrayTypes[D];
}

/** A whole file: tensors in header order plus the free-form string metadata. */
export interface SafetensorsContents {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

interface DtypeInfo {
  bytes: number;
  make: (buffer: ArrayBuffer, byteOffset: number, length: number) => SafetensorsData;
  is: (a: unknown) => boolean;
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  F64: { bytes: 8, make: (b, o, n) => new Float64Array(b, o, n), is: (a) => a instanceof Float64Array },
  F32: { bytes: 4, make: (b, o, n) => new Float32Array(b, o, n), is: (a) => a instanceof Float32Array },
  F16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n), is: (a) => a instanceof Uint16Array },
  BF16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n), is: (a) => a instanceof Uint16Array },
  I64: { bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n), is: (a) => a instanceof BigInt64Array },
  I32: { bytes: 4, make: (b, o, n) => new Int32Array(b, o, n), is: (a) => a instanceof Int32Array },
  I16: { bytes: 2, make: (b, o, n) => new Int16Array(b, o, n), is: (a) => a instanceof Int16Array },
  I8: { bytes: 1, make: (b, o, n) => new Int8Array(b, o, n), is: (a) => a instanceof Int8Array },
  U64: { bytes: 8, make: (b, o, n) => new BigUint64Array(b, o, n), is: (a) => a instanceof BigUint64Array },
  U32: { bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n), is: (a) => a instanceof Uint32Array },
  U16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n), is: (a) => a instanceof Uint16Array },
  U8: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n), is: (a) => a instanceof Uint8Array },
  BOOL: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n), is: (a) => a instanceof Uint8Array },
  F8_E4M3: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n), is: (a) => a instanceof Uint8Array },
  F8_E5M2: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n), is: (a) => a instanceof Uint8Array },
};

/** Same limit as the reference implementation: a larger header means a corrupted or hostile file. */
const MAX_HEADER_BYTES = 100_000_000;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed arrays use host byte order and the format is little-endian; every platform Node supports is.
  throw new Error('safetensors: big-endian hosts are not supported');
}

/** Where the bytes come from: a whole in-memory file, or an open descriptor read piece by piece. */
interface ByteSource {
  label: string;
  size: number;
  /** Copies `length` bytes at `position` into `dst`; throws CheckpointError when the source ends early. */
  readInto(dst: Uint8Array, position: number): void;
}

function bufferSource(bytes: Uint8Array, label: string): ByteSource {
  return {
    label,
    size: bytes.byteLength,
    readInto(dst, position) {
      dst.set(bytes.subarray(position, position + dst.byteLength));
    },
  };
}

function fileSource(fd: number, path: string): ByteSource {
  return {
    label: path,
    size: fs.fstatSync(fd).size,
    readInto(dst, position) {
      // Node reads at most 2 GiB per call: loop.
      let done = 0;
      while (done < dst.byteLength) {
        const n = fs.readSync(fd, dst, done, Math.min(dst.byteLength - done, 1 << 30), position + done);
        if (n === 0) throw new CheckpointError(`${path}: truncated safetensors file (ended while reading tensor data)`);
        done += n;
      }
    },
  };
}

function fail(label: string, what: string): never {
  throw new CheckpointError(`${label}: ${what}`);
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(src: ByteSource): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  const { label } = src;
  if (src.size < 8) fail(label, `truncated safetensors file: ${src.size} bytes, the 8-byte header length is missing`);
  const lenBytes = new Uint8Array(8);
  src.readInto(lenBytes, 0);
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(label, `corrupted safetensors header: declared header length ${headerLen} bytes exceeds ${MAX_HEADER_BYTES}`);
  }
  const n = Number(headerLen);
  if (8 + n > src.size) {
    fail(
      label,
      `truncated safetensors file: header declares ${n} bytes but the file has only ${src.size - 8} after the length`,
    );
  }
  const headerBytes = new Uint8Array(n);
  src.readInto(headerBytes, 8);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(label, `corrupted safetensors header: not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail(label, 'corrupted safetensors header: the JSON header must be an object');
  }
  const dataStart = 8 + n;
  const dataSize = src.size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        fail(label, 'corrupted safetensors header: __metadata__ must be an object of strings');
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(label, `corrupted safetensors header: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(label, name, raw, dataSize));
  }
  checkLayout(label, entries, dataSize);
  return { entries, metadata, dataStart };
}

function parseEntry(label: string, name: string, raw: unknown, dataSize: number): HeaderEntry {
  const bad = (what: string): never => fail(label, `corrupted safetensors header: tensor "${name}" ${what}`);
  if (typeof raw !== 'object' || raw === null) bad('is not an object');
  const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) bad(`has unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(`has invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    bad(`has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const info = DTYPES[dtype as SafetensorsDtype];
  const [begin, end] = offsets as [number, number];
  const expected = numel(shape as number[]) * info.bytes;
  if (end - begin !== expected) {
    bad(`spans ${end - begin} bytes but ${dtype}[${shape}] needs ${expected}`);
  }
  if (end > dataSize) {
    fail(
      label,
      `truncated safetensors file: tensor "${name}" ends at data byte ${end} but only ${dataSize} data bytes are present`,
    );
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), begin, end };
}

/** Tensors must not overlap and must cover the data section exactly (as the reference implementation checks). */
function checkLayout(label: string, entries: HeaderEntry[], dataSize: number): void {
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) fail(label, `corrupted safetensors header: tensor "${e.name}" overlaps another tensor`);
    if (e.begin > cursor)
      fail(label, `corrupted safetensors header: ${e.begin - cursor} unused bytes before "${e.name}"`);
    cursor = e.end;
  }
  if (cursor !== dataSize) {
    fail(
      label,
      `corrupted safetensors file: ${dataSize - cursor} bytes after the last tensor are not described by the header`,
    );
  }
}

function readAll(src: ByteSource): SafetensorsContents {
  const { entries, metadata, dataStart } = parseHeader(src);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const info = DTYPES[e.dtype];
    // A fresh ArrayBuffer per tensor: aligned for its element type, and independent of the file.
    const buffer = new ArrayBuffer(e.end - e.begin);
    src.readInto(new Uint8Array(buffer), dataStart + e.begin);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: info.make(buffer, 0, numel(e.shape)) });
  }
  return { tensors, metadata };
}

/**
 * Reads a safetensors file (a path, or the file's bytes) with its metadata. Throws `CheckpointError` naming the
 * file and the problem when it is truncated or its header is corrupted.
 */
export function readSafetensorsFile(source: string | Uint8Array, label = '<buffer>'): SafetensorsContents {
  if (typeof source !== 'string') return readAll(bufferSource(source, label));
  let fd: number;
  try {
    fd = fs.openSync(source, 'r');
  } catch (e) {
    throw new CheckpointError(`${source}: cannot open safetensors file (${(e as Error).message})`);
  }
  try {
    return readAll(fileSource(fd, source));
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the tensors of a safetensors file (a path or its bytes), in header order. See `readSafetensorsFile`. */
export function readSafetensors(source: string | Uint8Array): Map<string, SafetensorsTensor> {
  return readSafetensorsFile(source).tensors;
}

interface PlannedTensor {
  name: string;
  tensor: SafetensorsTensor;
  bytes: Uint8Array;
}

function planLayout(
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; planned: PlannedTensor[] } {
  const planned: PlannedTensor[] = [];
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`writeSafetensors: metadata "${k}" must be a string`);
    }
    json.__metadata__ = metadata;
  }
  let offset = 0;
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new TypeError('writeSafetensors: "__metadata__" is reserved, not a tensor name');
    const info = Object.hasOwn(DTYPES, t.dtype) ? DTYPES[t.dtype] : undefined;
    if (!info) throw new TypeError(`writeSafetensors: tensor "${name}" has unknown dtype ${t.dtype}`);
    if (!info.is(t.data)) {
      throw new TypeError(
        `writeSafetensors: tensor "${name}" of dtype ${t.dtype} has data of type ${t.data.constructor.name}`,
      );
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel(t.shape) !== t.data.length) {
      throw new RangeError(`writeSafetensors: tensor "${name}" has shape [${t.shape}] but ${t.data.length} elements`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    json[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    planned.push({ name, tensor: t, bytes });
  }
  const text = JSON.stringify(json);
  const encoded = new TextEncoder().encode(text);
  const padded = Math.ceil(encoded.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20); // pad with spaces, as the reference writer does
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(encoded, 8);
  return { header, planned };
}

/** Encodes tensors (and optional string metadata) as safetensors bytes in memory. */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { header, planned } = planLayout(tensors, metadata);
  const out = new Uint8Array(header.byteLength + planned.reduce((a, p) => a + p.bytes.byteLength, 0));
  out.set(header, 0);
  let at = header.byteLength;
  for (const p of planned) {
    out.set(p.bytes, at);
    at += p.bytes.byteLength;
  }
  return out;
}

/**
 * Writes tensors in the standard safetensors layout, streaming each tensor to disk (no whole-file buffer, so
 * files past Node's 4 GiB ArrayBuffer cap work). Tensors keep the order given. Atomicity (temporary name, fsync,
 * rename) is the caller's job.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): void {
  const { header, planned } = planLayout(tensors, metadata);
  const fd = fs.openSync(path, 'w');
  try {
    writeFully(fd, header);
    for (const p of planned) writeFully(fd, p.bytes);
  } finally {
    fs.closeSync(fd);
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
  }
}

/** fp16 bits -> fp32 value (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * The tensor's values as fp32 (F32 is copied; F16, BF16, F64 and integer types are converted). Use it to load
 * Hugging Face checkpoints stored in half precision.
 */
export function safetensorToFloat32(t: SafetensorsTensor): Float32Array {
  const d = t.data;
  switch (t.dtype) {
    case 'F32':
      return (d as Float32Array).slice();
    case 'BF16': {
      // bf16 is the upper half of an fp32: shift the bits into place.
      const bits = new Uint32Array(d.length);
      for (let i = 0; i < d.length; i++) bits[i] = ((d as Uint16Array)[i] << 16) >>> 0;
      return new Float32Array(bits.buffer);
    }
    case 'F16': {
      const out = new Float32Array(d.length);
      for (let i = 0; i < d.length; i++) out[i] = halfToFloat((d as Uint16Array)[i]);
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2':
      throw new CheckpointError(`cannot convert ${t.dtype} to float32: fp8 is not supported`);
    default: {
      const out = new Float32Array(d.length);
      for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
      return out;
    }
  }
}
