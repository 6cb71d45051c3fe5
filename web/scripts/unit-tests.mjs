// `npm test`: the page's unit tests (test/*.test.ts) in node, without a browser. Each test file
// is bundled with what it imports from src/ by esbuild (the TypeScript is stripped, not checked:
// `tsc -p test` checks it first) into a scratch folder, then run by node's own test runner.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { build } from 'esbuild'

const testDir = new URL('../test/', import.meta.url).pathname
const entries = readdirSync(testDir).filter((f) => f.endsWith('.test.ts')).map((f) => join(testDir, f))
if (entries.length === 0) {
  console.error(`unit-tests: no *.test.ts in ${testDir}`)
  process.exit(1)
}
const out = mkdtempSync(join(tmpdir(), 'duet-web-unit-'))
try {
  await build({
    entryPoints: entries,
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  })
  const files = readdirSync(out).filter((f) => f.endsWith('.test.mjs')).map((f) => join(out, f))
  const run = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' })
  process.exitCode = run.status ?? 1
} finally {
  rmSync(out, { recursive: true, force: true })
}
