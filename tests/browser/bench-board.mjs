// Measures the whiteboard for BENCHMARKS.md: what opening the board costs a page that has the
// editor already (bytes and time until Excalidraw draws the room's board), and how long a shape
// drawn in one browser takes to show in the other (localhost, two browser contexts).
// Run: node tests/browser/bench-board.mjs (after `cd web && npm run build` and `cargo build --bin duet`).
import { freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, requireParts } from './harness.mjs'

requireParts()
const port = await freePort(); const dataDir = tempDir('duet-bench-board-')
const server = await startServer({ port, dataDir })
const browser = await launchBrowser()
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))] }

// 1. Opening the board on a coding question (the editor is there first).
const iv = await adminApi(server.url, 'POST', '/api/interviews', { title: 'bench', candidate_name: 'Bench', question_id: 'lru-cache' })
const opens = []; let boardBytes = 0; let boardWire = 0
for (let i = 0; i < 8; i++) {
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  const page = await context.newPage()
  await page.goto(iv.urls.candidate)
  await page.waitForFunction(() => document.querySelector('.cm-content')?.textContent.includes('class LRUCache'), null, { timeout: 10_000 })
  let loaded = 0; let wire = 0
  page.on('response', async (r) => {
    try { loaded += (await r.body()).length; wire += (await r.request().sizes()).responseBodySize } catch { /* ws */ }
  })
  const t0 = Date.now()
  await page.click('[data-testid=show-board]')
  await page.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
  opens.push(Date.now() - t0)
  await page.waitForTimeout(500) // fonts and lazy parts that follow the first draw
  boardBytes = loaded; boardWire = wire
  await context.close()
}
console.log(`opening the board (ms): ${opens.join(', ')}; p50 ${pct(opens.slice(1), 0.5)}`)
console.log(`bytes opening the board loads: ${(boardBytes / 1024).toFixed(1)} KiB, ${(boardWire / 1024).toFixed(1)} KiB on the wire`)

// 2. A shape from one browser to the other: the candidate draws a rectangle; the time from its
// pointer going down until the interviewer's board lists it (polled every animation frame in the interviewer's page).
const design = await adminApi(server.url, 'POST', '/api/interviews', { title: 'bench', candidate_name: 'Bench', question_id: 'design-read-heavy-cache' })
// Each page stamps the Yjs document updates it sends (y-websocket's sync message 0, update 2),
// so the shape's time can also be taken from the drawing page's send, leaving out the synthetic
// pointer events' devtools round trips and the binding's wait for the next frame.
const stampUpdates = () => {
  window.__updatesSent = []
  const send = WebSocket.prototype.send
  WebSocket.prototype.send = function (data) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null
    if (this.url.includes('/yjs') && bytes && bytes[0] === 0 && bytes[1] === 2) window.__updatesSent.push(performance.timeOrigin + performance.now())
    return send.call(this, data)
  }
}
const open = async (url) => {
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  await context.addInitScript(stampUpdates)
  const page = await context.newPage()
  await page.goto(url)
  await page.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
  return page
}
const cand = await open(design.urls.candidate)
const intv = await open(design.urls.interviewer)
const box = await cand.locator('[data-testid=board-canvas]').boundingBox()
const lags = []; const wireLags = []
for (let i = 0; i < 30; i++) {
  const before = await intv.locator('[data-testid=board-summary] li').count()
  const seen = intv.evaluate((n) => new Promise((resolve) => {
    const tick = () => document.querySelectorAll('[data-testid=board-summary] li').length > n ? resolve(performance.timeOrigin + performance.now()) : requestAnimationFrame(tick)
    tick()
  }), before)
  await cand.locator('[data-testid=board] [data-testid=toolbar-rectangle]').click({ force: true })
  const x = box.x + 60 + (i % 6) * 60; const y = box.y + box.height - 200 + Math.floor(i / 6) * 30
  await cand.mouse.move(x, y)
  const t0 = await cand.evaluate(() => performance.timeOrigin + performance.now())
  await cand.mouse.down()
  await cand.mouse.move(x + 40, y + 20)
  await cand.mouse.up()
  const shown = await seen
  lags.push(Math.round(shown - t0))
  const sent = await cand.evaluate((t) => window.__updatesSent.find((s) => s >= t), t0)
  if (sent !== undefined) wireLags.push(Math.round((shown - sent) * 10) / 10)
}
console.log(`a new shape, pointer down in one browser to listed in the other (ms): ${lags.join(', ')}`)
console.log(`p50 ${pct(lags, 0.5)} ms, p99 ${pct(lags, 0.99)} ms over ${lags.length}`)
console.log(`the same shapes, the drawing page's update sent to listed in the other (ms): ${wireLags.join(', ')}`)
console.log(`p50 ${pct(wireLags, 0.5)} ms, p99 ${pct(wireLags, 0.99)} ms over ${wireLags.length}`)
await browser.close(); await server.stop(); removeDir(dataDir)
