// Bundles snippet/src/ into one minified IIFE at server/assets/t.js (or the path given as the
// first argument) and prints its raw, gzip and brotli sizes as one JSON line.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const outfile = process.argv[2] || path.join(here, '..', 'server', 'assets', 't.js');

await build({
  entryPoints: [path.join(here, 'src', 'index.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2017', 'chrome64', 'firefox67', 'safari12'],
  legalComments: 'none',
  outfile,
});

const raw = readFileSync(outfile);
const sizes = {
  file: path.relative(process.cwd(), outfile),
  raw: raw.length,
  gzip: gzipSync(raw, { level: 9 }).length,
  brotli: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
};
console.log(JSON.stringify(sizes));
