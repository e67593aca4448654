/**
 * Hosts and slots of a job: DeepSpeed's hostfile (`hostname slots=N`) and its `--include`/`--exclude`
 * selection syntax (`host1:0,1@host2`), so a DeepSpeed user's files and flags work unchanged.
 */
import { hostname } from 'node:os';
import { ZeroFlowError } from '@zeroflow/core';

/** A hostfile or host selection that cannot be used; the message names the file and line or the word. */
export class HostfileError extends ZeroFlowError {}

/** One host of the job and the slot ids (0-based) it runs ranks on, in rank order. */
export interface HostSlots {
  host: string;
  slots: number[];
}

const HOST_LINE = /^(\S+)\s+slots\s*=\s*(\d+)$/;

/**
 * Parses a DeepSpeed hostfile: one `hostname slots=N` per line, `#` comments and blank lines allowed.
 * `source` names the file in error messages.
 */
export function parseHostfile(text: string, source = 'hostfile'): HostSlots[] {
  const hosts: HostSlots[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/#.*$/, '').trim();
    if (line === '') continue;
    const where = `${source}:${i + 1}`;
    const m = HOST_LINE.exec(line);
    if (!m) throw new HostfileError(`${where}: expected "hostname slots=N", got "${line}"`);
    const [, host, slotText] = m as unknown as [string, string, string];
    const slots = Number(slotText);
    if (!Number.isSafeInteger(slots) || slots < 1) {
      throw new HostfileError(`${where}: slots must be a positive integer, got "${slotText}"`);
    }
    if (hosts.some((h) => h.host === host)) throw new HostfileError(`${where}: host "${host}" is listed twice`);
    hosts.push({ host, slots: Array.from({ length: slots }, (_, s) => s) });
  }
  if (hosts.length === 0) throw new HostfileError(`${source}: no hosts (expected lines like "worker-1 slots=4")`);
  return hosts;
}

/** A parsed `--include`/`--exclude` value: host -> the slot ids named, or `null` for "the whole host". */
export type HostSelection = Map<string, number[] | null>;

/** Parses DeepSpeed's selection syntax: `host1@host2:0,2` (hosts separated by `@`, slot ids by `,`). */
export function parseHostSelection(text: string, flag: string): HostSelection {
  const selection: HostSelection = new Map();
  for (const part of text.split('@')) {
    const [host, slotList, extra] = part.split(':');
    if (!host || extra !== undefined) {
      throw new HostfileError(`${flag} "${text}": "${part}" is not "host" or "host:slot,slot"`);
    }
    let slots: number[] | null = null;
    if (slotList !== undefined) {
      slots = slotList.split(',').map((s) => {
        if (!/^\d+$/.test(s)) throw new HostfileError(`${flag} "${text}": slot "${s}" of ${host} is not an integer`);
        return Number(s);
      });
    }
    if (selection.has(host)) throw new HostfileError(`${flag} "${text}": host "${host}" is named twice`);
    selection.set(host, slots);
  }
  return selection;
}

function checkKnown(hosts: HostSlots[], selection: HostSelection, flag: string): void {
  for (const [host, slots] of selection) {
    const known = hosts.find((h) => h.host === host);
    if (!known) {
      throw new HostfileError(
        `${flag}: host "${host}" is not in the hostfile (${hosts.map((h) => h.host).join(', ')})`,
      );
    }
    for (const s of slots ?? []) {
      if (!known.slots.includes(s)) {
        throw new HostfileError(`${flag}: ${host} has no slot ${s} (slots ${known.slots.join(',')})`);
      }
    }
  }
}

/**
 * Applies `--include` (keep only what is named; a bare host keeps all its slots) or `--exclude` (drop what is
 * named; a bare host drops the host) to the hosts, keeping the hostfile's order. Hosts left with no slot are
 * dropped. Giving both is an error, as in DeepSpeed.
 */
export function selectHosts(hosts: HostSlots[], include?: string, exclude?: string): HostSlots[] {
  if (include && exclude) throw new HostfileError('--include and --exclude cannot be used together');
  let selected = hosts;
  if (include) {
    const sel = parseHostSelection(include, '--include');
    checkKnown(hosts, sel, '--include');
    selected = hosts
      .filter((h) => sel.has(h.host))
      .map((h) => {
        const named = sel.get(h.host);
        return { host: h.host, slots: named ? h.slots.filter((s) => named.includes(s)) : [...h.slots] };
      });
  } else if (exclude) {
    const sel = parseHostSelection(exclude, '--exclude');
    checkKnown(hosts, sel, '--exclude');
    selected = hosts
      .map((h) => {
        if (!sel.has(h.host)) return { host: h.host, slots: [...h.slots] };
        const named = sel.get(h.host);
        return { host: h.host, slots: named ? h.slots.filter((s) => !named.includes(s)) : [] };
      })
      .filter((h) => h.slots.length > 0);
  }
  if (selected.length === 0) throw new HostfileError('no slots left after --include/--exclude');
  return selected;
}

/**
 * Caps each host at `perNode` ranks (its first selected slots); a host with fewer selected slots is an error,
 * since silently running fewer ranks than asked changes the batch size.
 */
export function limitSlotsPerNode(hosts: HostSlots[], perNode: number): HostSlots[] {
  return hosts.map((h) => {
    if (h.slots.length < perNode) {
      throw new HostfileError(
        `--nproc-per-node ${perNode}: host ${h.host} has only ${h.slots.length} selected slot(s)`,
      );
    }
    return { host: h.host, slots: h.slots.slice(0, perNode) };
  });
}

/** Whether `host` names this machine (loopback or its own hostname), so ranks can be spawned directly. */
export function isLocalHost(host: string): boolean {
  const own = hostname();
  return (
    host === 'localhost' || host === '::1' || host.startsWith('127.') || host === own || host === own.split('.')[0]
  );
}

/** Whether `addr` is a loopback address, reachable from this machine only. */
export function isLoopbackAddress(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || addr.startsWith('127.');
}
