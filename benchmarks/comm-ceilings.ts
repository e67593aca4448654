/**
 * The ceilings the collectives are compared with, measured in the same run: memory copy bandwidth in one
 * process, and a raw loopback TCP stream between two processes (the most any socket transport can move).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';

/** GB/s (1e9 bytes/s) of `Float32Array.prototype.set` copying `bytes`, one value per iteration. */
export function memcpyGBs(bytes: number, iters: number, warmup = 2): number[] {
  const src = new Float32Array(bytes / 4).fill(1.5);
  const dst = new Float32Array(bytes / 4).fill(0);
  const out: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    dst.set(src);
    const s = (performance.now() - t0) / 1000;
    if (i >= warmup) out.push(bytes / s / 1e9);
  }
  return out;
}

/**
 * GB/s of a loopback TCP stream from a child process (comm-tcp-sender.ts, large writes) into this one,
 * which reads with `onread` into one reused buffer so that no allocation is measured. One value per
 * round of `bytesPerRound`; each round starts with a one-byte request (one loopback round trip included).
 */
export async function loopbackTcpGBs(
  bytesPerRound: number,
  rounds: number,
  { warmup = 1, writeBytes = 16 << 20, readBytes = 4 << 20 } = {},
): Promise<number[]> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'comm-tcp-sender.ts'), String(bytesPerRound), String(writeBytes)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', (code) => reject(new Error(`the TCP sender exited with ${code} before listening`)));
    });
    let received = 0;
    let roundDone: (() => void) | null = null;
    const socket = net.connect({
      host: '127.0.0.1',
      port,
      onread: {
        buffer: Buffer.allocUnsafe(readBytes),
        callback: (n: number) => {
          received += n;
          if (received >= bytesPerRound && roundDone) roundDone();
          return true;
        },
      },
    });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.setNoDelay(true);
    const out: number[] = [];
    for (let r = 0; r < warmup + rounds; r++) {
      received = 0;
      const done = new Promise<void>((resolve) => {
        roundDone = resolve;
      });
      const t0 = performance.now();
      socket.write(Buffer.from([1]));
      await done;
      const s = (performance.now() - t0) / 1000;
      if (r >= warmup) out.push(bytesPerRound / s / 1e9);
    }
    socket.end();
    return out;
  } finally {
    if (child.exitCode === null) {
      await new Promise((resolve) => {
        child.once('exit', resolve);
        setTimeout(() => child.kill(), 5000).unref();
      });
    }
  }
}
