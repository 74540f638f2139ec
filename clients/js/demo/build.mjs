// SPDX-License-Identifier: Apache-2.0
// Builds the trip-planner demo into demo/dist/ (what `vellum serve --demo-dir`
// serves at /demo/): app.js (demo/src/main.ts bundled with the client), sw.js
// (the service worker, versioned by a hash of the shell), index.html, style.css.
// Type-checks first (tsc, strict); `--no-check` skips that.
//   node demo/build.mjs [--no-check] [--dev]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const demo = path.dirname(fileURLToPath(import.meta.url));
const packageRoot = path.dirname(demo);
const dist = path.join(demo, 'dist');
const args = new Set(process.argv.slice(2));
const dev = args.has('--dev');

if (!args.has('--no-check')) {
  const tsc = path.join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const project of ['tsconfig.json', 'tsconfig.sw.json']) {
    execFileSync(process.execPath, [tsc, '-p', path.join(demo, project)], { stdio: 'inherit' });
  }
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  legalComments: 'none',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [path.join(demo, 'src', 'main.ts')],
  outfile: path.join(dist, 'app.js'),
});
copyFileSync(path.join(demo, 'index.html'), path.join(dist, 'index.html'));
copyFileSync(path.join(demo, 'style.css'), path.join(dist, 'style.css'));

const hash = createHash('sha256');
for (const file of ['index.html', 'app.js', 'style.css'])
  hash.update(readFileSync(path.join(dist, file)));
const version = hash.digest('hex').slice(0, 16);
await build({
  ...common,
  entryPoints: [path.join(demo, 'src', 'sw.ts')],
  outfile: path.join(dist, 'sw.js'),
  format: 'iife',
  define: { SHELL_VERSION: JSON.stringify(version) },
});
console.log(`demo built: ${path.relative(process.cwd(), dist) || dist} (shell ${version})`);
