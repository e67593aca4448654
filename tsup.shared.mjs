// Shared tsup settings: ESM (.mjs) + CJS (.cjs) + .d.ts per package, explicit extensions.
export function packageConfig(entry, extra = {}) {
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    outExtension: ({ format }) => ({ js: format === 'esm' ? '.mjs' : '.cjs' }),
    ...extra,
  };
}
