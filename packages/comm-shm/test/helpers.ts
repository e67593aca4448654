import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const packageDir = join(here, '..');

export interface RankOutcome {
  rank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Parsed JSON lines the rank printed. */
  lines: Record<string, unknown>[];
  stderr: string;
}

/**
 * Spawns `n` real processes running test/fixtures/rank.ts with `scenario`, sharing a fresh FileStore
 * directory; resolves when all have exited. `onLine` sees each JSON line as it arrives (to kill a rank).
 */
export function spawnRanks(
  n: number,
  scenario: string,
  env: Record<string, string> = {},
  onLine?: (rank: number, line: Record<string, unknown>, pids: number[]) => void,
): Promise<RankOutcome[]> {
  const storeDir = mkdtempSync(join(tmpdir(), 'zf-shm-store-'));
  const children = Array.from({ length: n }, (_, rank) =>
    spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'rank.ts')], {
      cwd: packageDir,
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(n),
        STORE_DIR: storeDir,
        SCENARIO: scenario,
        // Small staging areas so modest test sizes still take several rounds and chunks.
        ZEROFLOW_SHM_SLOT_BYTES: '65536',
        ZEROFLOW_SHM_P2P_BYTES: '65536',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const pids = children.map((c) => c.pid ?? -1);
  return Promise.all(
    children.map(
      (child, rank) =>
        new Promise<RankOutcome>((resolve) => {
          const out: RankOutcome = { rank, pid: pids[rank], code: null, signal: null, lines: [], stderr: '' };
          let pending = '';
          child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
            pending += chunk;
            let nl = pending.indexOf('\n');
            while (nl >= 0) {
              const text = pending.slice(0, nl);
              pending = pending.slice(nl + 1);
              try {
                const line = JSON.parse(text);
                out.lines.push(line);
                onLine?.(rank, line, pids);
              } catch {
                out.stderr += `${text}\n`;
              }
              nl = pending.indexOf('\n');
            }
          });
          child.stderr.setEncoding('utf8').on('data', (c: string) => {
            out.stderr += c;
          });
          child.on('close', (code, signal) => {
            out.code = code;
            out.signal = signal;
            resolve(out);
          });
        }),
    ),
  ).finally(() => rmSync(storeDir, { recursive: true, force: true }));
}
