import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type BackendInit, type CommBackend, CommError, type ProcessGroup } from '@zeroflow/core';
import { loadShmAddon, type ShmAddon, shmAddonUnavailableReason } from '@zeroflow/native';
import { ShmProcessGroup, shmBufferSizesFromEnv } from './group.js';

/** Prefix of every segment this backend creates: `/zf-<pid of rank 0>-<random>[.<subgroup>...]`. */
export const SEGMENT_PREFIX = 'zf-';

/** Counts world groups created in this process; every rank creates them in the same order. */
let worldGenerations = 0;

function requireAddon(): ShmAddon {
  const addon = loadShmAddon();
  if (!addon) {
    throw new CommError(
      `the shm backend cannot run: ${shmAddonUnavailableReason()}; use the tcp backend (ZEROFLOW_COMM=tcp)`,
    );
  }
  return addon;
}

/** An identity of this machine and kernel boot: ranks sharing it can share /dev/shm. */
function hostIdentity(): string {
  let boot = '';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {}
  return `${hostname()}/${boot}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes segments left by jobs whose rank 0 is dead (a crash before every rank mapped the segment, the
 * only window in which a name exists). Returns the names removed.
 */
export function sweepStaleSegments(addon: ShmAddon, dir = '/dev/shm'): string[] {
  const removed: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of entries) {
    const m = /^zf-(\d+)-[0-9a-f]+/.exec(name);
    if (m && !pidAlive(Number(m[1])) && addon.unlinkSegment(`/${name}`)) removed.push(name);
  }
  return removed;
}

/**
 * Forms the world group: checks through the store that every rank is on this host, agrees on a segment
 * name chosen by rank 0, maps it, waits until every rank has mapped it, and unlinks the name.
 */
export async function createShmWorldGroup(init: BackendInit): Promise<ShmProcessGroup> {
  const addon = requireAddon();
  const { store, rank, worldSize } = init;
  const ns = `zeroflow/shm/${++worldGenerations}`;
  const all = Array.from({ length: worldSize }, (_, r) => r);

  await store.set(`${ns}/host/${rank}`, hostIdentity());
  await store.wait(
    all.map((r) => `${ns}/host/${r}`),
    init.timeoutMs,
  );
  const hosts = await Promise.all(all.map(async (r) => new TextDecoder().decode(await store.get(`${ns}/host/${r}`))));
  const elsewhere = all.filter((r) => hosts[r] !== hosts[rank]);
  if (elsewhere.length > 0) {
    throw new CommError(
      `the shm backend needs every rank on one host, but ranks [${elsewhere.join(',')}] run on another host than rank ${rank}; ` +
        'use the tcp backend (ZEROFLOW_COMM=tcp) for multi-host jobs',
    );
  }

  if (rank === 0) {
    sweepStaleSegments(addon);
    await store.set(`${ns}/segment`, `/${SEGMENT_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  }
  const segment = new TextDecoder().decode(await store.get(`${ns}/segment`, init.timeoutMs));
  const group = new ShmProcessGroup({
    addon,
    segment,
    rank,
    ranks: all,
    timeoutMs: init.timeoutMs,
    sizes: shmBufferSizesFromEnv(),
  });
  try {
    // Wait through the store (not a native blocking wait): the store server may live in this process.
    await store.set(`${ns}/mapped/${rank}`, '1');
    await store.wait(
      all.map((r) => `${ns}/mapped/${r}`),
      init.timeoutMs,
    );
    group.finishAttach(init.timeoutMs);
    // An awaited (not blocking) barrier: no rank returns while another still waits on the store, whose
    // server may run on this rank's event loop, which a blocking wait() right after would freeze.
    await group.barrier().promise;
  } catch (e) {
    group.destroy();
    throw e;
  }
  return group;
}

/** The `shm` CommBackend: one host, native shared memory. */
export const shmBackend: CommBackend = {
  name: 'shm',
  available() {
    if (process.platform !== 'linux')
      return { ok: false, reason: `shm backend needs Linux (this is ${process.platform})` };
    if (!loadShmAddon()) return { ok: false, reason: shmAddonUnavailableReason() ?? 'native addon unavailable' };
    return { ok: true };
  },
  createWorldGroup(init: BackendInit): Promise<ProcessGroup> {
    return createShmWorldGroup(init);
  },
};
