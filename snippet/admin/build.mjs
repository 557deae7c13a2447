// Bundles the console's browser code (snippet/admin/charts.js, editor.js) into minified files in
// server/admin/static/ (or the folder given as the first argument), writes the licences of every
// bundled npm package next to them, and prints each file's raw, gzip and brotli size as one JSON
// line. The built files are committed, like server/assets/t.js: the server never runs node, and
// the console loads nothing from elsewhere (tests/admin/test_assets.py checks they are current).
import { build } from 'esbuild';
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const snippet = path.dirname(here);
const outdir = path.resolve(process.argv[2] || path.join(snippet, '..', 'server', 'admin', 'static'));
mkdirSync(outdir, { recursive: true });

// style-mod, which CodeMirror puts its styles in with, adopts a constructed style sheet only
// into shadow roots and writes a <style> element into a document's head, which
// `style-src 'self'` blocks. Constructed sheets are CSSOM, which CSP allows, and every browser
// the console targets adopts them into documents too: so it adopts them everywhere.
const STYLE_MOD_TEST = '!root.head && root.adoptedStyleSheets && win.CSSStyleSheet';
const adoptStylesInDocuments = {
  name: 'adopt-styles-in-documents',
  setup(build) {
    build.onLoad({ filter: /node_modules[\\/]style-mod[\\/].*\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (source.split(STYLE_MOD_TEST).length !== 2) {
        throw new Error('style-mod changed: look again at the CSP patch in snippet/admin/build.mjs');
      }
      return { contents: source.replace(STYLE_MOD_TEST, 'root.adoptedStyleSheets && win.CSSStyleSheet'), loader: 'js' };
    });
  },
};

const result = await build({
  entryPoints: [path.join(here, 'charts.js'), path.join(here, 'editor.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  // The console targets current browsers only; the snippet (build.mjs) is the one that must
  // run everywhere.
  target: ['es2020'],
  // Licences ship as one file per bundle, written below from each package's own LICENSE,
  // since most of these packages carry no licence comment in their code.
  legalComments: 'none',
  metafile: true,
  plugins: [adoptStylesInDocuments],
  outdir,
  logLevel: 'warning',
});

// The npm packages each output file was built from, from esbuild's metafile.
function packagesOf(output) {
  const names = new Set();
  for (const input of Object.keys(output.inputs)) {
    const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (match) names.add(match[1]);
  }
  return [...names].sort();
}

function licenceText(name) {
  const dir = path.join(snippet, 'node_modules', name);
  const meta = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  if (!file) throw new Error(`${name} ships no LICENSE file: add its licence by hand`);
  const text = readFileSync(path.join(dir, file), 'utf8').trim();
  return `${meta.name} ${meta.version} (${meta.license})\n${meta.homepage || ''}\n\n${text}\n`;
}

const sizes = [];
for (const [file, output] of Object.entries(result.metafile.outputs).sort()) {
  const packages = packagesOf(output);
  if (packages.length) {
    const licences = packages.map(licenceText).join('\n' + '-'.repeat(72) + '\n\n');
    const name = path.basename(file);
    writeFileSync(`${file}.LICENSE.txt`, `Third-party software bundled in ${name}:\n\n${licences}`);
    const note = `/*! ${name} bundles third-party software: licences in ${name}.LICENSE.txt */\n`;
    writeFileSync(file, note + readFileSync(file, 'utf8'));
  }
  const raw = readFileSync(file);
  sizes.push({
    file: path.relative(process.cwd(), file),
    raw: raw.length,
    gzip: gzipSync(raw, { level: 9 }).length,
    brotli: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  });
}
console.log(JSON.stringify(sizes));
