// The library as a page ships it: bundled and minified by esbuild, then gzipped.
// Prints the size and fails over the budget (5 kB: EmailJS's browser SDK is about 4 kB).
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const BUDGET = 5 * 1024;
const result = await build({
  entryPoints: [new URL('../index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  write: false,
});
const code = result.outputFiles[0].contents;
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`mmms-client: ${code.length} bytes minified, ${gzipped} bytes minified+gzipped (budget ${BUDGET})`);
if (gzipped > BUDGET) {
  console.error('mmms-client is over its size budget');
  process.exit(1);
}
