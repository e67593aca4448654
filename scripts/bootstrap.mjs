#!/usr/bin/env node
// Makes a fresh clone ready: pinned pnpm, dependencies, builds (nx-cached, so quick when nothing changed).
// Used by `npm start` and `npm test`, the README's two commands.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pnpm, root } from './pnpm.mjs';

function installStamp() {
  const h = createHash('sha256');
  for (const f of ['pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json']) {
    const p = join(root, f);
    if (existsSync(p)) h.update(readFileSync(p));
  }
  return h.digest('hex');
}

const stampFile = join(root, 'node_modules', '.zeroflow-install-stamp');
const stamp = installStamp();
if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) ? ['--frozen-lockfile'] : [];
  const r = pnpm(['install', ...frozen]);
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeFileSync(stampFile, stamp);
}

const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };
const b = pnpm(['exec', 'nx', 'run-many', '-t', 'build', '--outputStyle=static'], { env });
if (b.status !== 0) process.exit(b.status ?? 1);
