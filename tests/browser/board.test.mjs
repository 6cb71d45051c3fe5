// The whiteboard as people use it, in Debian's Chromium against the real server: an interview on
// a system-design prompt opens on the board with its starter drawing; the candidate and the
// interviewer draw and each sees the other's shapes and pointer live; text typed on the board
// stays text; a shape the server refuses closes only the socket that sent it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, shot, axe,
} from './harness.mjs'

let server, dataDir, browser, interview, starter
let candidate, interviewer // { context, page, seen }

const summaryOf = (page) => page.locator('[data-testid=board-summary] li').allTextContents()

async function openRoom(url, name) {
  // Wide enough for the board beside the code.
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(url)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 10_000 })
  return { context, page, seen, name }
}

/** Waits until `page`'s board lists exactly `n` shapes; answers them. */
async function shapes(page, n, what) {
  const deadline = Date.now() + 15_000
  let last = []
  while (Date.now() < deadline) {
    last = await summaryOf(page)
    if (last.length === n) return last
    await page.waitForTimeout(50)
  }
  assert.fail(`${what}: expected ${n} shapes, the board lists ${last.length}: ${JSON.stringify(last)}`)
}

/** Draws a rectangle by dragging from (x, y), in page pixels, with the rectangle tool. */
async function drawRectangle(page, x, y) {
  await page.locator('[data-testid=board] [data-testid=toolbar-rectangle]').click({ force: true })
  await page.mouse.move(x, y)
  await page.mouse.down()
  await page.mouse.move(x + 60, y + 30, { steps: 5 })
  await page.mouse.move(x + 120, y + 60, { steps: 5 })
  await page.mouse.up()
}

/** An empty spot near the bottom of the page's board, in page pixels. */
async function emptySpot(page, dx = 0) {
  const box = await page.locator('[data-testid=board-canvas]').boundingBox()
  return { x: box.x + box.width / 2 - 150 + dx, y: box.y + box.height - 170 }
}

before(async () => {
  requireParts()
  const port = await freePort()
  dataDir = tempDir('duet-board-')
  server = await startServer({ port, dataDir })
  browser = await launchBrowser()
  const question = await adminApi(server.url, 'GET', '/api/questions/design-rate-limited-api')
  starter = question.board.map((json) => JSON.parse(json))
  interview = await adminApi(server.url, 'POST', '/api/interviews', {
    title: 'System design', candidate_name: 'Ada', question_id: 'design-rate-limited-api',
  })
  candidate = await openRoom(interview.urls.candidate, 'candidate')
  interviewer = await openRoom(interview.urls.interviewer, 'interviewer')
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

test('a design prompt opens on the board with its starter drawing, beside the code', async () => {
  for (const { page, name } of [candidate, interviewer]) {
    await page.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
    const listed = await shapes(page, starter.length, `${name}'s starter drawing`)
    assert.ok(listed.includes('text: SMS provider\n100 req/s, else 429'), `${name}: ${JSON.stringify(listed)}`)
    assert.equal(await page.locator('[data-testid=show-board]').getAttribute('aria-pressed'), 'true')
    assert.ok(await page.locator('[data-testid=editor]').isVisible(), `${name}: the code stays beside the board on a wide screen`)
    assert.deepEqual(await axe(page), [], `${name}: serious or critical accessibility violations with the board open`)
  }
  await shot(candidate.page, 'board-starter')
  await shot(interviewer.page, 'board-starter-interviewer')
})

test('both people draw and each sees the other\'s shapes and pointer live; text stays text', async () => {
  const n = starter.length
  // The candidate draws a box for the queue; the interviewer's board shows it.
  const spot = await emptySpot(candidate.page)
  await drawRectangle(candidate.page, spot.x, spot.y)
  await shapes(candidate.page, n + 1, 'the candidate\'s own board')
  const seen = await shapes(interviewer.page, n + 1, 'the interviewer\'s board after the candidate drew')
  assert.equal(seen.filter((s) => s === 'rectangle').length, starter.filter((e) => e.type === 'rectangle').length + 1)

  // The interviewer writes a label that looks like markup; the candidate sees it as text.
  const at = await emptySpot(interviewer.page, 200)
  await interviewer.page.locator('[data-testid=board] [data-testid=toolbar-text]').click({ force: true })
  await interviewer.page.mouse.click(at.x, at.y)
  // Type only once Excalidraw's text editor is open: keys sent before it mounts are lost, and
  // an empty text is dropped on Escape (that, not the sync, is what a slow machine showed).
  await interviewer.page.locator('textarea.excalidraw-wysiwyg').waitFor({ timeout: 10_000 })
  await interviewer.page.keyboard.type('<b>workers</b> & retries')
  await interviewer.page.keyboard.press('Escape')
  await shapes(interviewer.page, n + 2, 'the interviewer\'s own board after writing')
  await shapes(candidate.page, n + 2, 'the candidate\'s board after the interviewer wrote')
  // The text arrives as it is typed: the count can be there a keystroke before the last letter.
  const label = candidate.page.locator('[data-testid=board-summary] li').filter({ hasText: /^text: <b>workers<\/b> & retries$/ })
  await label.waitFor({ state: 'attached', timeout: 10_000 }).catch(async () =>
    assert.fail(`the candidate's board never listed the whole label: ${JSON.stringify(await summaryOf(candidate.page))}`))
  assert.equal(await candidate.page.locator('[data-testid=board-summary] b').count(), 0, 'no markup made it into the page')

  // The interviewer's pointer over the board reaches the candidate's board with the name the
  // server stamped (Excalidraw lists the people on the board).
  const box = await interviewer.page.locator('[data-testid=board-canvas]').boundingBox()
  await interviewer.page.mouse.move(box.x + 200, box.y + 200, { steps: 4 })
  // The pane is narrow, so Excalidraw lists the people on the board in its menu.
  await candidate.page.locator('[data-testid=board] [data-testid=main-menu-trigger]').click()
  const people = candidate.page.locator('[data-testid=board] .UserList-Wrapper')
  await people.waitFor({ timeout: 10_000 })
  assert.equal(await people.locator('.Avatar').first().textContent(), 'I', 'the interviewer\'s avatar, named by the server')
  await shot(candidate.page, 'board-live')

  for (const { page, seen: s, name } of [candidate, interviewer]) {
    // Excalidraw lists its CDN after the server as a source of every font; the page's CSP blocks
    // it (nothing is fetched from elsewhere) and the fonts come from the server.
    const cdnFallback = /^CSP: Loading the font 'https:\/\/esm\.sh\/@excalidraw\//
    assert.deepEqual(s.problems.filter((p) => !cdnFallback.test(p)), [], `${name}: CSP violations or page errors`)
    // Fonts load as text first needs them: wait for it rather than read it once.
    const loaded = await page.waitForFunction(
      () => [...document.fonts].some((f) => f.family === 'Excalifont' && f.status === 'loaded'),
      null, { timeout: 10_000 },
    ).then(() => true, () => false)
    assert.ok(loaded, `${name}: Excalidraw's hand-drawn font loaded from the server`)
    assert.ok(!s.urls.some((u) => !u.startsWith(server.url) && !u.startsWith(server.url.replace('http', 'ws')) && !u.startsWith('data:')),
      `${name} loaded only from the server: ${s.urls.filter((u) => !u.startsWith(server.url)).join(', ')}`)
  }
})

test('a shape the server refuses closes only the socket that sent it, with 1007 saying why', async () => {
  const before = await summaryOf(interviewer.page)
  // From the candidate's page, a socket of its own sends an image element, as a tampered page
  // would: a Yjs update writing board["pic"] (encoded by hand, as y-protocols lays it out).
  const closed = await candidate.page.evaluate(async ({ id, token }) => {
    const bytes = []
    const uint = (n) => { while (n > 0x7f) { bytes.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) } bytes.push(n) }
    const str = (s) => { const b = new TextEncoder().encode(s); uint(b.length); bytes.push(...b) }
    const json = JSON.stringify({ id: 'pic', type: 'image', fileId: 'f1', x: 0, y: 0, width: 10, height: 10, version: 1, versionNonce: 1 })
    uint(1); uint(1); uint(987654321); uint(0) // one client, one struct, at clock 0
    bytes.push(8 | 0x20) // Any content, with a key
    uint(1); str('board'); str('pic') // parent: the root "board", key "pic"
    uint(1); bytes.push(119); str(json) // one value: a string
    uint(0) // no deletions
    const update = bytes.splice(0)
    uint(0); uint(2); uint(update.length) // sync, update, its length
    const message = new Uint8Array([...bytes, ...update])
    const ws = new WebSocket(`${location.origin.replace('http', 'ws')}/yjs/${id}?token=${encodeURIComponent(token)}`)
    ws.binaryType = 'arraybuffer'
    return await new Promise((resolve) => {
      ws.onopen = () => ws.send(message)
      ws.onclose = (e) => resolve({ code: e.code, reason: e.reason })
      setTimeout(() => resolve({ code: 0, reason: 'no close within 10 s' }), 10_000)
    })
  }, { id: interview.id, token: interview.tokens.candidate })
  assert.equal(closed.code, 1007, JSON.stringify(closed))
  assert.match(closed.reason, /"image"/)

  // Nobody else noticed: both boards are as they were, and both people still draw.
  await candidate.page.waitForTimeout(300)
  assert.deepEqual(await summaryOf(interviewer.page), before)
  const spot = await emptySpot(interviewer.page, 300)
  await drawRectangle(interviewer.page, spot.x, spot.y)
  await shapes(candidate.page, before.length + 1, 'the candidate\'s board after the refusal')
})
