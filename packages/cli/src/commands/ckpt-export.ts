/**
 * `zeroflow ckpt export <dir> [--tag T] --out model.safetensors [--dtype fp32|fp16|bf16]`: the consolidated
 * weights of a checkpoint as one safetensors file that Hugging Face loads (`from_pretrained` with the
 * model's config.json): the models' parameter names are already Hugging Face's (DESIGN.md section 8).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CheckpointError,
  narrow,
  readManifest,
  readSafetensorsFile,
  type SafetensorsTensor,
  writeSafetensors,
} from '@zeroflow/core';
import { type CliIO, type Command, EXIT, UsageError } from '../command.js';

const USAGE = `Usage: zeroflow ckpt export <dir> --out model.safetensors [--tag T] [--dtype fp32|fp16|bf16]

Writes the weights of a ZeroFlow checkpoint as one safetensors file with Hugging Face parameter names
(metadata format "pt"), after checking every file of the checkpoint against its manifest checksum.

Options:
  --tag T       the checkpoint tag (default: the one named by <dir>/latest)
  --out FILE    the safetensors file to write (written to a temporary name, then renamed)
  --dtype D     fp32 (default), fp16 or bf16 (rounded to nearest even)
  --json        print a JSON summary {out, tag, dtype, tensors, parameters, bytes}
  -h, --help    show this help`;

/** The dtypes `--dtype` takes and their safetensors names. */
export const EXPORT_DTYPES = { fp32: 'F32', fp16: 'F16', bf16: 'BF16' } as const;
export type ExportDtype = keyof typeof EXPORT_DTYPES;

/** The fp32 values as a safetensors tensor of `dtype`. */
export function convertTensor(shape: number[], data: Float32Array, dtype: ExportDtype): SafetensorsTensor {
  if (dtype === 'fp32') return { dtype: 'F32', shape, data };
  return { dtype: dtype === 'bf16' ? 'BF16' : 'F16', shape, data: narrow(data, dtype) };
}

/** What an export wrote. */
export interface ExportSummary {
  out: string;
  tag: string;
  dtype: ExportDtype;
  tensors: number;
  parameters: number;
  bytes: number;
}

/**
 * Exports the model weights of checkpoint `tag` (default: latest) in `dir` to `out`. Every model file of the
 * checkpoint contributes its tensors (a name in two files is an error); the manifest's checksums are checked.
 */
export function exportCheckpoint(dir: string, out: string, opts: { tag?: string; dtype?: ExportDtype } = {}) {
  const dtype = opts.dtype ?? 'fp32';
  const manifest = readManifest(dir, opts.tag);
  const modelFiles = manifest.files.filter((f) => f.kind === 'model');
  if (modelFiles.length === 0) throw new CheckpointError(`checkpoint "${manifest.tag}" has no model weights file`);
  const tensors = new Map<string, SafetensorsTensor>();
  let parameters = 0;
  for (const f of modelFiles) {
    const file = path.join(dir, manifest.tag, f.file);
    for (const [name, t] of readSafetensorsFile(file, file).tensors) {
      if (t.dtype !== 'F32') throw new CheckpointError(`${file}: tensor ${name} has dtype ${t.dtype}, expected F32`);
      if (tensors.has(name)) throw new CheckpointError(`tensor ${name} is in more than one model file`);
      tensors.set(name, convertTensor(t.shape, t.data as Float32Array, dtype));
      parameters += t.data.length;
    }
  }
  // Written beside the target and renamed, so a reader never sees half a file.
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    writeSafetensors(tmp, tensors, { format: 'pt' });
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const summary: ExportSummary = {
    out,
    tag: manifest.tag,
    dtype,
    tensors: tensors.size,
    parameters,
    bytes: fs.statSync(out).size,
  };
  return summary;
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        tag: { type: 'string' },
        out: { type: 'string' },
        dtype: { type: 'string', default: 'fp32' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function run(args: string[], io: CliIO): number {
  const { values, positionals } = parse(args);
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'missing <dir>' : `expected one <dir>, got ${positionals.length}`);
  }
  if (!values.out) throw new UsageError('missing --out');
  const dtype = values.dtype as ExportDtype;
  if (!(dtype in EXPORT_DTYPES)) throw new UsageError(`--dtype must be fp32, fp16 or bf16, got "${values.dtype}"`);
  const summary = exportCheckpoint(positionals[0], values.out, { tag: values.tag, dtype });
  if (values.json) io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    io.stdout(
      `${summary.out}: ${summary.tensors} tensors, ${summary.parameters} parameters, ${dtype}, ${summary.bytes} bytes (checkpoint "${summary.tag}")\n`,
    );
  }
  return EXIT.ok;
}

/** The `ckpt export` command. */
export const ckptExportCommand: Command = {
  path: ['ckpt', 'export'],
  summary: 'write a checkpoint’s weights as one Hugging Face safetensors file (fp32, fp16 or bf16)',
  usage: USAGE,
  run,
};
