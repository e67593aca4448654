/**
 * Prefixes every line of a rank's output (`[rank 3] `). Lines are cut on byte 10 of the raw stream, so a
 * multi-byte character split across chunks is decoded whole, and each chunk's complete lines go out in one
 * write, so the ranks' lines interleave only at line boundaries.
 */
import { StringDecoder } from 'node:string_decoder';

/** Where prefixed output goes; `write` returns false when the destination wants the source paused. */
export interface OutputSink {
  write(text: string): boolean;
  /** Calls `listener` once the destination drained (absent: it never asks for a pause). */
  once?(event: 'drain', listener: () => void): unknown;
}

/** A line longer than this is emitted in pieces, so a rank printing without newlines cannot exhaust memory. */
const MAX_PENDING_BYTES = 1 << 20;

/** Line-buffers one output stream and writes each line with a prefix. */
export class LinePrefixer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly prefix: string,
    private readonly sink: OutputSink,
  ) {}

  /** Adds a chunk; returns the sink's answer to the last write (false: pause the source until drain). */
  push(chunk: Buffer): boolean {
    let out = '';
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl + 1);
      const line = this.pendingBytes > 0 ? Buffer.concat([...this.pending, piece]) : piece;
      this.pending = [];
      this.pendingBytes = 0;
      out += this.prefix + line.toString('utf8');
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes >= MAX_PENDING_BYTES) out += this.takePending();
    }
    return out === '' ? true : this.sink.write(out);
  }

  /** Writes a partial last line (with a newline added, so the next rank's line starts on its own). */
  flush(): void {
    if (this.pendingBytes > 0) this.sink.write(this.takePending());
  }

  private takePending(): string {
    const text = Buffer.concat(this.pending).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return `${this.prefix}${text}\n`;
  }
}

/** Streams `source` into `sink` line by line with `prefix` (or unchanged when prefix is empty). */
export function pipePrefixed(source: NodeJS.ReadableStream, prefix: string, sink: OutputSink): void {
  const prefixer = new LinePrefixer(prefix, sink);
  const decoder = new StringDecoder('utf8'); // unprefixed: still never split a character across writes
  source.on('data', (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const ok = prefix === '' ? sink.write(decoder.write(bytes)) : prefixer.push(bytes);
    if (!ok && sink.once) {
      source.pause();
      sink.once('drain', () => source.resume());
    }
  });
  source.on('end', () => {
    if (prefix === '') {
      const rest = decoder.end();
      if (rest) sink.write(rest);
    } else prefixer.flush();
  });
}
