#!/usr/bin/env node
// Runs the pinned pnpm (installed by bootstrap into .tools/) with the given arguments.
// Why: a fresh machine has only Node and npm; we never rely on a global pnpm of another version.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PNPM_VERSION = '12.4.2';
export const pnpmBin = join(root, '.tools', 'node_modules', 'pnpm', 'bin', 'pnpm.mjs');

export function ensurePnpm() {
  if (existsSync(pnpmBin)) return;
  console.log(`[zeroflow] installing pnpm ${PNPM_VERSION} into .tools/ (one time)`);
  const r = spawnSync('npm', ['install', '--prefix', join(root, '.tools'), '--no-audit', '--no-fund', '--no-save', `pnpm@${PNPM_VERSION}`], { stdio: 'inherit', cwd: root });
  if (r.status !== 0 || !existsSync(pnpmBin)) {
    console.error('[zeroflow] could not install pnpm with npm; check that the npm registry is reachable');
    process.exit(1);
  }
}

/** PATH with the pinned pnpm first: nx and package scripts call `pnpm` by name. */
export function envWithPnpm(env = process.env) {
  return { ...env, PATH: `${join(root, '.tools', 'node_modules', '.bin')}${delimiter}${env.PATH ?? ''}` };
}

export function pnpm(args, opts = {}) {
  ensurePnpm();
  const env = envWithPnpm(opts.env);
  return spawnSync(process.execPath, [pnpmBin, ...args], { stdio: 'inherit', cwd: root, ...opts, env });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = pnpm(process.argv.slice(2));
  process.exit(r.status ?? 1);
}
