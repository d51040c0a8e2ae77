// Copies the browser libraries the site loads from node_modules into vendor/, with their
// licenses. vendor/ is committed, so a plain clone serves a working site; regenerate it with
//     npm --prefix site ci && npm --prefix site run vendor
// Each library's folder is replaced whole, so files a new version drops do not linger.

import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SITE = dirname(dirname(fileURLToPath(import.meta.url)));

// package: the npm package; into: the folder under vendor/; files: paths inside the package;
// license: the license file, relative to site/ (node_modules/<package>/... when it ships one).
const LIBRARIES = [
  {
    package: 'onnxruntime-web',
    into: 'onnxruntime-web',
    files: [
      // The WASM-only ES module build, with its emscripten glue inlined: the page needs just
      // this and the wasm binary (not the 28 MB WebGPU one that the default entry loads).
      'dist/ort.wasm.bundle.min.mjs',
      'dist/ort-wasm-simd-threaded.wasm',
      // The same glue as a file: loaded only when `ort.env.wasm.wasmPaths` is a URL prefix or
      // the bundle is served from another origin.
      'dist/ort-wasm-simd-threaded.mjs',
    ],
    // The package declares MIT but ships no license file: this is onnxruntime's LICENSE.
    license: 'scripts/licenses/onnxruntime-web.LICENSE',
  },
  {
    package: 'uplot',
    into: 'uplot',
    // The ES module build (no dependencies) and its stylesheet: the stats page's charts.
    files: ['dist/uPlot.esm.js', 'dist/uPlot.min.css'],
    license: 'node_modules/uplot/LICENSE',
  },
];

const wanted = JSON.parse(readFileSync(join(SITE, 'package.json'), 'utf8')).devDependencies;

for (const library of LIBRARIES) {
  const source = join(SITE, 'node_modules', library.package);
  let installed;
  try {
    installed = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')).version;
  } catch {
    throw new Error(`${library.package} is not installed: run npm --prefix site ci first`);
  }
  if (installed !== wanted[library.package]) {
    throw new Error(`node_modules has ${library.package} ${installed}, package.json pins ` +
      `${wanted[library.package]}: run npm --prefix site ci first`);
  }
  const target = join(SITE, 'vendor', library.into);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const file of library.files) copyFileSync(join(source, file), join(target, basename(file)));
  copyFileSync(join(SITE, library.license), join(target, 'LICENSE'));
  console.log(`vendored ${library.package} ${installed} into vendor/${library.into}/`);
}
