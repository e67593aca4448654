import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** SHA-256 of a file, read in chunks (works past the 4 GiB buffer cap). */
export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a file atomically: `write(tmp)` fills a temporary name in the same folder, which is fsynced and
 * renamed over `file`, then the folder is fsynced so the rename survives a crash. A reader sees either the
 * old file or the complete new one, never a torn write.
 */
export function writeFileAtomic(file: string, write: (tmpPath: string) => void): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  try {
    write(tmp);
    fsyncPath(tmp);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPath(dir);
}

/** Atomic write of a text file. */
export function writeTextAtomic(file: string, text: string): void {
  writeFileAtomic(file, (tmp) => fs.writeFileSync(tmp, text));
}
