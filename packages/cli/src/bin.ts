#!/usr/bin/env node
// The `zeroflow` executable (package.json "bin"): a thin shell around runCli.
import { runCli } from './main.js';

runCli(process.argv.slice(2)).then((code) => {
  // exitCode, not exit(): lets buffered stdout (a large resolved config piped to a file) drain first.
  process.exitCode = code;
});
