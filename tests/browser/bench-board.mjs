// Measures the whiteboard for BENCHMARKS.md: what opening the board costs a page that has the
// editor already (bytes and time until Excalidraw draws the room's board), and how long a shape
// drawn in one browser takes to show in the other (localhost, two browser contexts).
// Run: node tests/browser/bench-board.mjs (after `cd web && npm run build` and `cargo build --bin duet`);
// BENCH_BOARD=stroke measures only the shape between browsers (part 2); BENCH_BOARD_SHAPES=N
// puts N rectangles on the board first (off to the side of where the shapes are drawn).
import * as Y from '../../web/node_modules/yjs/dist/yjs.mjs'
import { freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, requireParts } from './harness.mjs'

requireParts()
const port = await freePort(); const dataDir = tempDir('duet-bench-board-')
const server = await startServer({ port, dataDir })
const browser = await launchBrowser()
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))] }

// 1. Opening the board on a coding question (the editor is there first).
async function opening () {
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
}
// 2. A shape from one browser to the other: the candidate drags a rectangle; the interviewer's
// page shows it. Each page stamps, in its own clock (performance.timeOrigin + now, one machine):
// - the Yjs document updates it sends (y-websocket's sync message 0, update 2), at the send,
//   and its pointer events (when the browser made each);
// - the updates it receives: when the page's main thread made the websocket message event (its
//   timeStamp: a busy receiving page makes it late), when the handler began and returned;
// - when its board summary's list grew (a MutationObserver: the moment the DOM holds the
//   shape, no polling period in the figure), and the next animation frame after that (the
//   frame that paints Excalidraw's canvas with it).
// A drag sends several updates: the rectangle at pointer down has no size yet, and Excalidraw
// does not show an invisibly small element (restoreElements drops it), so the shape is listed
// when the update that gives it a size arrives. The interviewer sends no update of its own and
// the server relays each in order, so the n-th update received is the n-th sent: the figure
// runs from the send of the update that made the shape visible to its listing.
async function stroke () {
  const design = await adminApi(server.url, 'POST', '/api/interviews', { title: 'bench', candidate_name: 'Bench', question_id: 'design-read-heavy-cache' })
  const stamp = () => {
    const now = () => performance.timeOrigin + performance.now()
    const isUpdate = (data) => {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null
      return bytes !== null && bytes[0] === 0 && bytes[1] === 2
    }
    window.__updatesSent = []
    window.__updatesIn = []
    window.__pointerEvents = []
    for (const type of ['pointerdown', 'pointermove', 'pointerup']) {
      window.addEventListener(type, (e) => window.__pointerEvents.push(performance.timeOrigin + e.timeStamp), true)
    }
    const send = WebSocket.prototype.send
    WebSocket.prototype.send = function (data) {
      if (this.url.includes('/yjs') && isUpdate(data)) window.__updatesSent.push(now())
      return send.call(this, data)
    }
    const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage')
    Object.defineProperty(WebSocket.prototype, 'onmessage', {
      configurable: true,
      get () { return onmessage.get.call(this) },
      set (handler) {
        const ws = this
        onmessage.set.call(this, typeof handler !== 'function' ? handler : function (event) {
          if (!ws.url.includes('/yjs') || !isUpdate(event.data)) return handler.call(this, event)
          const entry = { queued: performance.timeOrigin + event.timeStamp, handled: now(), done: 0 }
          window.__updatesIn.push(entry)
          try { return handler.call(this, event) } finally { entry.done = now() }
        })
      },
    })
  }
  const watchSummary = () => {
    const now = () => performance.timeOrigin + performance.now()
    window.__listed = []
    const list = document.querySelector('[data-testid=board-summary]')
    let count = list.children.length
    new MutationObserver(() => {
      if (list.children.length === count) return
      count = list.children.length
      const entry = { n: count, at: now(), frame: 0 }
      window.__listed.push(entry)
      requestAnimationFrame(() => { entry.frame = now() })
    }).observe(list, { childList: true })
  }
  const open = async (url) => {
    const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
    await context.addInitScript(stamp)
    const page = await context.newPage()
    await page.goto(url)
    await page.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
    await page.waitForFunction(() => window.duetReady === true, null, { timeout: 20_000 })
    await page.evaluate(watchSummary)
    return page
  }
  const cand = await open(design.urls.candidate)
  const intv = await open(design.urls.interviewer)
  const SHAPES = Number(process.env.BENCH_BOARD_SHAPES ?? 0)
  if (SHAPES > 0) {
    // One Yjs update writing SHAPES elements into the board map, sent from the candidate's page
    // on a socket of its own (as a second tab would), then both boards list them.
    const doc = new Y.Doc()
    const map = doc.getMap('board')
    doc.transact(() => {
      for (let i = 0; i < SHAPES; i++) {
        const id = `seed-${i}`
        map.set(id, JSON.stringify({
          id, type: 'rectangle', x: 3000 + (i % 50) * 40, y: Math.floor(i / 50) * 40, width: 30, height: 30, angle: 0,
          strokeColor: '#1e1e1e', backgroundColor: 'transparent', fillStyle: 'solid', strokeWidth: 2, strokeStyle: 'solid',
          roughness: 1, opacity: 100, groupIds: [], frameId: null, roundness: null, seed: i + 1, version: 2, versionNonce: i + 7,
          isDeleted: false, boundElements: null, updated: 1, link: null, locked: false,
        }))
      }
    })
    const update = [...Y.encodeStateAsUpdate(doc)]
    const before = await intv.locator('[data-testid=board-summary] li').count()
    const closed = await cand.evaluate(async ({ id, token, update }) => {
      const bytes = []
      const uint = (n) => { while (n > 0x7f) { bytes.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) } bytes.push(n) }
      uint(0); uint(2); uint(update.length) // sync, update, its length
      const message = new Uint8Array([...bytes, ...update])
      const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/yjs/${id}?token=${encodeURIComponent(token)}`)
      ws.binaryType = 'arraybuffer'
      await new Promise((resolve) => { ws.onopen = resolve })
      ws.send(message)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      ws.close()
      return ws.readyState
    }, { id: design.id, token: design.tokens.candidate, update })
    for (const page of [cand, intv]) {
      await page.waitForFunction((n) => document.querySelectorAll('[data-testid=board-summary] li').length >= n, before + SHAPES, { timeout: 60_000 })
    }
    console.log(`the board holds ${before + SHAPES} elements (${SHAPES} put there first; the seeding socket ended in state ${closed})`)
  }
  const box = await cand.locator('[data-testid=board-canvas]').boundingBox()
  const WARM = 3; const SAMPLES = Number(process.env.BENCH_BOARD_SAMPLES ?? 30)
  const rows = []
  for (let i = 0; i < WARM + SAMPLES; i++) {
    const before = await intv.locator('[data-testid=board-summary] li').count()
    const sentBefore = await cand.evaluate(() => window.__updatesSent.length)
    const inBefore = await intv.evaluate(() => window.__updatesIn.length)
    await cand.locator('[data-testid=board] [data-testid=toolbar-rectangle]').click({ force: true })
    const x = box.x + 40 + (i % 8) * 50; const y = box.y + box.height - 230 + Math.floor(i / 8) * 30
    await cand.mouse.move(x, y)
    await cand.mouse.down()
    await cand.mouse.move(x + 40, y + 20)
    await cand.mouse.up()
    const listed = await intv.evaluate((n) => new Promise((resolve) => {
      const find = () => window.__listed.find((e) => e.n > n && e.frame > 0)
      const tick = () => find() ? resolve(find()) : setTimeout(tick, 20)
      tick()
    }), before)
    // Every update of this drag has reached the other page (the pairing is by order).
    const sent = await cand.evaluate((from) => new Promise((resolve) => {
      let last = -1
      const tick = () => {
        // Settled: nothing sent for 100 ms after the pointer went up.
        if (window.__updatesSent.length === last) resolve({ sends: window.__updatesSent.slice(from), pointer: window.__pointerEvents.slice(-40) })
        else { last = window.__updatesSent.length; setTimeout(tick, 100) }
      }
      tick()
    }), sentBefore)
    const ins = await intv.evaluate(({ from, n }) => new Promise((resolve) => {
      const tick = () => window.__updatesIn.length - from >= n ? resolve(window.__updatesIn.slice(from)) : setTimeout(tick, 10)
      tick()
    }), { from: inBefore, n: sent.sends.length })
    if (ins.length !== sent.sends.length) throw new Error(`sent ${sent.sends.length} updates, received ${ins.length}: the pairing does not hold`)
    // The update whose handling listed the shape: the last one whose handler began before it.
    const k = ins.findLastIndex((u) => u.handled <= listed.at)
    if (i >= WARM) rows.push({ sent: sent.sends[k], input: sent.pointer.findLast((t) => t <= sent.sends[k]), ...ins[k], listed: listed.at, frame: listed.frame, updates: sent.sends.length, which: k + 1, all: ins })
  }
  const ms = (x) => Math.round(x * 10) / 10
  const line = (what, xs) => console.log(`${what}: p50 ${ms(pct(xs, 0.5))} ms, p99 ${ms(pct(xs, 0.99))} ms, max ${ms(Math.max(...xs))} ms`)
  console.log(`a new shape, ${rows.length} samples (after ${WARM} not counted); each drag sent ${Math.min(...rows.map((r) => r.updates))} to ${Math.max(...rows.map((r) => r.updates))} updates, the shape was listed on update ${[...new Set(rows.map((r) => r.which))].join(' or ')}`)
  line('the update that shows the shape, sent by the drawing page, to listed on the other board', rows.map((r) => r.listed - r.sent))
  line('  sent to the message event in the other page (the wire, the server, the receiving page\'s main thread getting to it)', rows.map((r) => r.queued - r.sent))
  line('  the event to its handler starting', rows.map((r) => r.handled - r.queued))
  line('  handler start to listed (Yjs apply, map observer, reconcile, Excalidraw scene, summary)', rows.map((r) => r.listed - r.handled))
  line('  listed to the next animation frame (the canvas painted)', rows.map((r) => r.frame - r.listed))
  line('every update of the drags: the receiving handler, start to return', rows.flatMap((r) => r.all.map((u) => u.done - u.handled)))
  line('the pointer event that gave the shape its size to the send of its update (the drawing page)', rows.map((r) => r.sent - r.input))
  line('that pointer event to listed on the other board', rows.map((r) => r.listed - r.input))
  console.log(`samples, sent to listed (ms): ${rows.map((r) => ms(r.listed - r.sent)).join(', ')}`)
}

try {
  if (process.env.BENCH_BOARD !== 'stroke') await opening()
  await stroke()
} finally {
  await browser.close(); await server.stop(); removeDir(dataDir)
}
