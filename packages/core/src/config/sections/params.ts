/**
 * Validation of one `optimizer` or `scheduler` section outside `resolveConfig`: createOptimizer, createScheduler
 * and the scheduler constructors are also called directly with a params object, and they validate it with the
 * same section schema as the config file, so keys, rules and defaults live in one place.
 */
import { ConfigError, type ConfigIssue } from '../../errors.js';
import { validateWithSchema } from '../schema.js';
import type { Schema } from '../schema-base.js';

/**
 * Validates `{ type, params }` against `schema` (a tagged section schema) at key path `section`, and returns the
 * section with every default filled and the type in its canonical spelling.
 *
 * @throws ConfigError listing every problem: unknown keys (with "did you mean"), invalid values, missing keys,
 *   and `"auto"` values, which only resolveConfig can fill (its `autoValues`); here they would silently become
 *   the default instead of the value the caller meant.
 */
export function validateSection<T>(
  schema: Schema<T | null>,
  section: 'optimizer' | 'scheduler',
  type: string,
  params: object,
): T {
  const issues: ConfigIssue[] = [];
  const autoPaths = new Set<string>();
  for (const [key, value] of Object.entries(params)) {
    if (value !== 'auto') continue;
    autoPaths.add(`${section}.params.${key}`);
    issues.push({
      path: `${section}.params.${key}`,
      value,
      rule: `"auto" must be resolved before the ${section} is built`,
      suggestion: 'set a value, or pass the config through resolveConfig with autoValues',
    });
  }
  const resolved = validateWithSchema(schema, { type, params }, section);
  // A required key set to "auto" is also reported by the schema; one issue per key is enough.
  issues.push(...resolved.issues.filter((issue) => !autoPaths.has(issue.path)));
  if (issues.length > 0 || resolved.value == null) throw new ConfigError(issues);
  return resolved.value;
}
