// The replay of a project and its board, in Debian's Chromium against the real server: the
// candidate creates shop/cart.py and types in it, draws a box on the board, then goes back to
// main.py and draws a second box; the interviewer cites the first box as evidence. The
// reviewer's replay at the moment of the first box shows that one box beside shop/cart.py as
// it stood (with main.py's tab beside it), the end shows both boxes beside main.py, and the
// scorecard's evidence link opens the board at its moment. After the submit, the debrief lists
// each card's evidence (a board moment, a run) as links that open the replay at that moment.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, shot,
} from './harness.mjs'

let server, dataDir, browser, interview, candidate

const summaryOf = (page, testid) => page.locator(`[data-testid=${testid}] li`).allTextContents()

async function until(what, check) {
  const deadline = Date.now() + 15_000
  let last
  while (Date.now() < deadline) {
    last = await check()
    if (last === true) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.fail(`${what}: ${JSON.stringify(last)}`)
}

async function shapes(page, testid, n, what) {
  await until(what, async () => {
    const listed = await summaryOf(page, testid)
    return listed.length === n && listed.every((s) => s === 'rectangle') ? true : listed
  })
}

async function drawRectangle(page, dx) {
  const box = await page.locator('[data-testid=board-canvas]').boundingBox()
  const x = box.x + box.width / 2 - 150 + dx, y = box.y + box.height / 2
  await page.locator('[data-testid=board] [data-testid=toolbar-rectangle]').click({ force: true })
  await page.mouse.move(x, y)
  await page.mouse.down()
  await page.mouse.move(x + 60, y + 30, { steps: 5 })
  await page.mouse.move(x + 120, y + 60, { steps: 5 })
  await page.mouse.up()
}

async function replaceText(page, text) {
  await page.locator('[data-testid=editor] .cm-content').click()
  await page.keyboard.press('Control+a')
  await page.keyboard.insertText(text)
}

const api = async (method, path, body) => {
  const response = await fetch(`${server.url}/api/interviews/${interview.id}${path}`, {
    method,
    headers: { Authorization: `Bearer ${interview.tokens.interviewer}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  assert.equal(response.status, 200, `${method} ${path}: ${await response.clone().text()}`)
  return response.json()
}

before(async () => {
  requireParts()
  const port = await freePort()
  dataDir = tempDir('duet-replay-')
  server = await startServer({ port, dataDir })
  browser = await launchBrowser()
  interview = await adminApi(server.url, 'POST', '/api/interviews', { title: 'Replay', candidate_name: 'Ada' })
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  const page = await context.newPage()
  record(page)
  await page.goto(interview.urls.candidate)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 10_000 })
  candidate = { context, page }
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

test('the replay at a middle moment shows the board of that moment beside the file then edited', async () => {
  const page = candidate.page
  // A module, typed into; then a box on the board.
  await page.getByTestId('new-file').click()
  await page.getByLabel('New file path').fill('shop/cart.py')
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  await page.locator('[data-testid=editor] .cm-content[data-path="shop/cart.py"]').waitFor({ timeout: 10_000 })
  await replaceText(page, 'class Cart:\n    pass\n')
  if (await page.getByTestId('show-board').getAttribute('aria-pressed') !== 'true') await page.getByTestId('show-board').click()
  await page.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
  await drawRectangle(page, 0)
  await shapes(page, 'board-summary', 1, 'the first box on the candidate\'s board')
  // Back to main.py, typed into; a second box.
  await page.locator('[data-testid=file-tabs] button.file-tab[data-path="main.py"]').click()
  await page.locator('[data-testid=editor] .cm-content[data-path="main.py"]').waitFor()
  await replaceText(page, 'print("later")\n')
  await drawRectangle(page, 220)
  await shapes(page, 'board-summary', 2, 'both boxes on the candidate\'s board')

  // Everything stored: the timeline has both board bursts and the typing after the first.
  let timeline
  await until('the timeline holds two board bursts and main.py typed after the first', async () => {
    timeline = await api('GET', '/timeline')
    const boards = timeline.events.filter((e) => e.type === 'board')
    const later = timeline.events.filter((e) => e.type === 'edit' && e.file === 'main.py' && boards[0] && e.seq > boards[0].last_seq)
    return boards.length === 2 && later.length > 0 ? true : timeline.events.map((e) => `${e.type} ${e.file ?? ''}`)
  })
  const firstBoard = timeline.events.find((e) => e.type === 'board')
  assert.ok(timeline.events.some((e) => e.type === 'file.created' && e.path === 'shop/cart.py' && e.by === 'candidate'))

  // The interviewer cites the moment of the first box as system-design evidence.
  const { scorecard } = await api('GET', '/scorecard')
  await api('PUT', '/scorecard', { version: scorecard.version, evidence: { system_design: [firstBoard.last_seq] } })

  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  const reviewer = await context.newPage()
  const seen = record(reviewer)
  await reviewer.goto(interview.urls.reviewer)
  await reviewer.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  const code = reviewer.locator('[data-testid=replay-code]')
  const tab = (path) => reviewer.locator(`[data-testid=replay-files] button.file-tab[data-path="${path}"]`)

  // The end: both boxes, main.py as last typed, shop/cart.py's tab beside it.
  await shapes(reviewer, 'replay-board-summary', 2, 'the replay\'s board at the end')
  assert.equal(await tab('main.py').getAttribute('aria-current'), 'true')
  await code.filter({ hasText: 'print("later")' }).waitFor()
  assert.equal(await tab('shop/cart.py').count(), 1)

  // The first box's moment, from the events list: one box, beside shop/cart.py as it stood.
  await reviewer.getByRole('button', { name: /drew on the board/ }).first().click()
  await shapes(reviewer, 'replay-board-summary', 1, 'the replay\'s board at the first box')
  await until('shop/cart.py shown at the first box', async () =>
    (await tab('shop/cart.py').getAttribute('aria-current')) === 'true' || 'another tab is current')
  await code.filter({ hasText: 'class Cart:' }).waitFor()
  // Drawn, not only listed: the box at its finished size.
  const rect = reviewer.locator('[data-testid=replay-board] svg rect')
  assert.equal(await rect.count(), 1)
  assert.ok(Number(await rect.getAttribute('width')) > 50, `a box as wide as it was drawn: ${await rect.getAttribute('width')}`)
  await shot(reviewer, 'replay-board-moment')
  await tab('main.py').click()
  await code.filter({ hasNotText: 'print("later")' }).waitFor()

  // Back to the end, then the scorecard's evidence: the board at its moment again.
  await reviewer.locator('#scrub').fill(await reviewer.locator('#scrub').getAttribute('max'))
  await shapes(reviewer, 'replay-board-summary', 2, 'the replay\'s board at the end again')
  await reviewer.getByTestId('evidence-link').filter({ hasText: `seq ${firstBoard.last_seq}` }).click()
  await shapes(reviewer, 'replay-board-summary', 1, 'the board at the evidence\'s moment')
  assert.match(await reviewer.getByTestId('when').textContent(), new RegExp(`seq ${firstBoard.last_seq}$`))
  assert.deepEqual(seen.problems, [], 'no page errors or CSP violations')
  await context.close()
})

test('the debrief lists a submitted card\'s evidence, a board moment and a run, as links into the replay at those moments', async () => {
  const loop = await adminApi(server.url, 'POST', '/api/interviews', { title: 'Design', candidate_name: 'Ada', candidate_ref: `replay-loop-${Date.now()}` })
  const as = (path, method = 'GET', body) => fetch(`${server.url}/api/interviews/${loop.id}${path}`, {
    method,
    headers: { Authorization: `Bearer ${loop.tokens.interviewer}`, 'Content-Type': 'application/json', 'X-Duet-Csrf': '1' },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => { assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`); return r.json() })

  // The candidate writes a line and draws one box; the interviewer runs the program once.
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(loop.urls.candidate)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 10_000 })
  await replaceText(page, 'print("hello")\n')
  await page.getByTestId('show-board').click()
  await page.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
  await drawRectangle(page, 0)
  await shapes(page, 'board-summary', 1, 'the box on the candidate\'s board')
  let board
  await until('the line and the box are on the timeline', async () => {
    const { events } = await as('/timeline')
    board = events.find((e) => e.type === 'board')
    return (board !== undefined && events.some((e) => e.type === 'edit')) || events.map((e) => e.type)
  })
  await drawRectangle(page, 220) // a second box, after the cited moment
  await shapes(page, 'board-summary', 2, 'both boxes on the candidate\'s board')
  const { run_id: runId } = await as('/runs', 'POST', { kind: 'run' })
  let finished
  await until('the run finished', async () => {
    finished = (await as('/timeline')).events.find((e) => e.type === 'run.finished' && e.run_id === runId)
    return finished !== undefined || 'not finished yet'
  })

  // The interviewer cites both and submits the card; the debrief opens.
  const { scorecard } = await as('/scorecard')
  await as('/scorecard', 'PUT', { version: scorecard.version, ratings: { system_design: 3 }, evidence: { system_design: [board.last_seq], debugging: [runId] } })
  await as('/scorecard/submit', 'POST')
  const debrief = await context.newPage()
  const debriefSeen = record(debrief)
  await debrief.goto(`${server.url}/debrief/interview/${loop.id}#token=${loop.tokens.interviewer}`)
  const row = debrief.locator('table.debrief').getByRole('row', { name: /^Evidence/ })
  await row.waitFor()
  const links = row.getByTestId('debrief-evidence')
  assert.equal(await links.count(), 2)
  assert.match(await row.innerText(), /System design: the board at \S+/)
  assert.match(await row.innerText(), /Debugging: run at \S+( [AP]M)? · (ok|error)/)
  assert.doesNotMatch(await row.innerText(), new RegExp(runId), 'the run reads as kind, time and result, not its id')
  await shot(debrief, 'debrief-evidence')

  // The board moment opens the replay there: one box, not the two of the end.
  await links.filter({ hasText: 'the board at' }).click()
  await debrief.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  assert.equal(new URL(debrief.url()).searchParams.get('seq'), String(board.last_seq))
  await shapes(debrief, 'replay-board-summary', 1, 'the replay\'s board at the cited moment')
  assert.match(await debrief.getByTestId('when').textContent(), new RegExp(`seq ${board.last_seq}$`))

  // The run opens the replay at its finish.
  await debrief.goBack()
  await debrief.locator('table.debrief').getByRole('row', { name: /^Evidence/ }).getByTestId('debrief-evidence').filter({ hasText: 'run at' }).click()
  await debrief.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  await until('the replay at the run\'s finish', async () =>
    new RegExp(`seq ${finished.seq}$`).test(await debrief.getByTestId('when').textContent()) || await debrief.getByTestId('when').textContent())
  // Excalidraw lists its CDN after the server for its fonts; the CSP blocks it (board.test.mjs).
  const cdnFallback = /^CSP: Loading the font 'https:\/\/esm\.sh\/@excalidraw\//
  assert.deepEqual(seen.problems.filter((p) => !cdnFallback.test(p)), [], 'the candidate\'s page: no page errors or CSP violations')
  assert.deepEqual(debriefSeen.problems.filter((p) => !cdnFallback.test(p)), [], 'the debrief and replay: no page errors or CSP violations')
  await context.close()
})
