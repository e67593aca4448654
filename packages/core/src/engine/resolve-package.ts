import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// True in the CJS build of core (tsup's ESM output has no __filename).
const isCjs = typeof __filename !== 'undefined';

function entryOf(pkgJsonPath: string): string | null {
  const pkg = JSON.parse(readFileSync(pkgJsonPath, 'utf8')) as {
    exports?: Record<string, unknown>;
    main?: string;
    module?: string;
  };
  const dot = pkg.exports?.['.'] as Record<string, unknown> | string | undefined;
  const pick = (cond: unknown): string | null => {
    if (typeof cond === 'string') return cond;
    if (cond && typeof cond === 'object') {
      const c = cond as Record<string, unknown>;
      return pick(c.default) ?? pick(c.node);
    }
    return null;
  };
  const wanted = isCjs ? 'require' : 'import';
  const fromExports = typeof dot === 'string' ? dot : dot ? (pick(dot[wanted]) ?? pick(dot.default)) : null;
  const file = fromExports ?? (isCjs ? pkg.main : (pkg.module ?? pkg.main)) ?? null;
  return file ? resolve(dirname(pkgJsonPath), file) : null;
}

/**
 * Imports a plugin package as the APPLICATION sees it (resolved from the main script's folder, then the
 * working directory), falling back to core's own resolution. Plugins are dependencies of the user's
 * project, not of core, so resolving them from core's folder would miss them.
 */
export async function importFromApp(pkg: string): Promise<unknown> {
  const bases = [process.argv[1] ? resolve(process.argv[1]) : null, join(process.cwd(), 'package.json')].filter(
    (b): b is string => b !== null,
  );
  for (const base of bases) {
    let pkgJson: string;
    try {
      pkgJson = createRequire(base).resolve(`${pkg}/package.json`);
    } catch {
      continue;
    }
    const entry = entryOf(pkgJson);
    if (entry) return isCjs ? createRequire(base)(entry) : import(pathToFileURL(entry).href);
  }
  return import(pkg);
}
