// Measures the browser app for BENCHMARKS.md: the bundle each page loads, and the time from
// navigation to an editable editor holding the room's text (the candidate's link, a fresh
// browser context each time, localhost). Run: node tests/browser/bench.mjs (after building).
import { readdirSync, statSync, readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'
import { ROOT, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, requireParts } from './harness.mjs'

requireParts()
const dist = join(ROOT, 'web', 'dist', 'assets')
let raw = 0; let gz = 0
for (const f of readdirSync(dist).filter((f) => !/\.(br|gz)$/.test(f) && statSync(join(dist, f)).isFile())) {
  const b = readFileSync(join(dist, f)); raw += statSync(join(dist, f)).size; gz += gzipSync(b).length
}
console.log(`bundle: ${(raw / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzip (all of web/dist/assets)`)

const port = await freePort(); const dataDir = tempDir('duet-bench-')
const server = await startServer({ port, dataDir })
const browser = await launchBrowser()
const iv = await adminApi(server.url, 'POST', '/api/interviews', { title: 'bench', candidate_name: 'Bench', question_id: 'lru-cache' })
const times = []; const bytes = []; const sent = []
for (let i = 0; i < 12; i++) {
  const context = await browser.newContext()
  const page = await context.newPage()
  let loaded = 0; let transferred = 0
  page.on('response', async (r) => {
    try {
      loaded += (await r.body()).length
      transferred += (await r.request().sizes()).responseBodySize
    } catch { /* ws */ }
  })
  const t0 = Date.now()
  await page.goto(iv.urls.candidate)
  await page.waitForFunction(() => {
    const c = document.querySelector('.cm-content')
    return c && c.getAttribute('contenteditable') === 'true' && c.textContent.includes('class LRUCache')
  }, null, { timeout: 10_000, polling: 'raf' })
  times.push(Date.now() - t0)
  bytes.push(loaded); sent.push(transferred)
  await context.close()
}
const warm = times.slice(2).sort((a, b) => a - b)
console.log(`time to an editable editor with the room's text (ms), runs: ${times.join(', ')}`)
console.log(`p50 ${warm[Math.floor(warm.length / 2)]} ms, max ${warm[warm.length - 1]} ms over the last ${warm.length}`)
console.log(`bytes the candidate page loaded: ${(bytes[bytes.length - 1] / 1024).toFixed(1)} KiB, ${(sent[sent.length - 1] / 1024).toFixed(1)} KiB on the wire`)
await browser.close(); await server.stop(); removeDir(dataDir)
