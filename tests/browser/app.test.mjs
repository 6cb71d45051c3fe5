// The browser app as people use it, in Debian's Chromium against the real server and sandbox:
// the candidate and the interviewer in two browser contexts, the reviewer's replay, the admin
// page, and what the candidate's page may never receive.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, axe, shot,
} from './harness.mjs'

let server, port, dataDir, browser, interview, question
let candidate, interviewer // { context, page, seen }
const pagesChecked = []

const codeOf = (page) => page.locator('[data-testid=editor] .cm-content').innerText()
const consoleOf = (page) => page.locator('[data-testid=console]')

async function openRoom(url, name) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(url)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 10_000 })
  await page.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 }).catch(() => {})
  return { context, page, seen, name }
}

async function expectNoA11yProblems(page, name) {
  const violations = await axe(page)
  assert.deepEqual(violations, [], `${name}: serious or critical accessibility violations`)
  pagesChecked.push(name)
}

before(async () => {
  requireParts()
  port = await freePort()
  dataDir = tempDir('duet-browser-')
  server = await startServer({ port, dataDir })
  browser = await launchBrowser()
  question = await adminApi(server.url, 'GET', '/api/questions/lru-cache')
  interview = await adminApi(server.url, 'POST', '/api/interviews', {
    title: 'Browser pairing', candidate_name: 'Ada <b>Lovelace</b>', question_id: 'lru-cache',
  })
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

test('the server serves the app with a strict CSP, no referrer, and long caching only for hashed assets', async () => {
  const res = await fetch(`${server.url}/interview/abc`)
  assert.equal(res.status, 200)
  const csp = res.headers.get('content-security-policy')
  assert.match(csp, /script-src 'self'/)
  assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/)
  assert.match(csp, /connect-src 'self'/)
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer')
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
  const html = await res.text()
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in index.html')
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)[1]
  const js = await fetch(server.url + asset)
  assert.equal(js.status, 200)
  assert.match(js.headers.get('cache-control'), /immutable/)
  assert.match(js.headers.get('content-encoding') ?? '', /^(br|gzip)$/, 'the bundle goes out compressed')
  assert.match(js.headers.get('content-type'), /javascript/)
  assert.equal((await fetch(`${server.url}/assets/..%2f..%2fCargo.toml`)).status, 404)
})

test('a websocket from another Origin is refused; one without an Origin is allowed', async () => {
  const upgrade = async (origin) => {
    const { request } = await import('node:http')
    return new Promise((resolve, reject) => {
      const headers = {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      }
      if (origin) headers.Origin = origin
      const req = request({ host: '127.0.0.1', port, path: `/yjs/${interview.id}?token=${interview.tokens.candidate}`, headers })
      req.on('upgrade', (res, socket) => { socket.destroy(); resolve(101) })
      req.on('response', (res) => { res.resume(); resolve(res.statusCode) })
      req.on('error', reject)
      req.end()
    })
  }
  assert.equal(await upgrade('http://evil.example'), 403)
  assert.equal(await upgrade(null), 101)
  assert.equal(await upgrade(`http://127.0.0.1:${port}`), 101)
})

test('the admin page takes the token, creates an interview with its three links, and lists it', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(`${server.url}/admin`)
  await page.getByLabel('Admin token').fill('browser-test-admin-token-0123456789')
  await page.getByRole('button', { name: 'Continue' }).click()
  await page.getByLabel('Candidate name').fill('Grace Hopper')
  await page.locator('#f-question option[value="top-k-words"]').waitFor({ state: 'attached' })
  await page.getByLabel('Question').selectOption('top-k-words')
  await page.getByRole('button', { name: 'Create interview' }).click()
  await page.getByLabel('Candidate link').waitFor()
  // Each link says in its path whom it is for.
  assert.match(await page.getByLabel('Candidate link').inputValue(), /\/interview\/[A-Za-z0-9_-]+\/candidate#token=/)
  assert.match(await page.getByLabel('Interviewer link').inputValue(), /\/interview\/[A-Za-z0-9_-]+\/interviewer#token=/)
  assert.match(await page.getByLabel('Reviewer link').inputValue(), /\/replay\/[A-Za-z0-9_-]+\/reviewer#token=/)
  await page.getByRole('cell', { name: 'Grace Hopper', exact: true }).waitFor()
  await shot(page, 'admin')
  await expectNoA11yProblems(page, 'admin')
  assert.deepEqual(seen.problems, [])
  await context.close()
})

test('candidate and interviewer each see the other\'s typing and cursor', async () => {
  candidate = await openRoom(interview.urls.candidate, 'candidate')
  interviewer = await openRoom(interview.urls.interviewer, 'interviewer')
  // The token left the address bar.
  assert.doesNotMatch(candidate.page.url(), /token/)
  assert.doesNotMatch(interviewer.page.url(), /token/)
  // The starter code arrived.
  await candidate.page.waitForFunction(() => document.querySelector('.cm-content')?.textContent.length > 0)

  const cpage = candidate.page
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.press('Control+a')
  await cpage.keyboard.type('print("start")\nname = input("name? ")\nprint("hello", name)\n')
  await interviewer.page.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('print("hello", name)'))
  // The candidate's cursor shows on the interviewer's side, labelled with the stamped name, as text.
  await interviewer.page.locator('.cm-ySelectionCaret').first().waitFor()
  assert.match(await interviewer.page.locator('.cm-ySelectionInfo').first().innerText(), /Ada <b>Lovelace<\/b>/)
  assert.equal(await interviewer.page.locator('.cm-ySelectionInfo b').count(), 0, 'names are text, not markup')

  await interviewer.page.locator('.cm-content').click()
  await interviewer.page.keyboard.press('Control+End')
  await interviewer.page.keyboard.type('# reviewed\n')
  await cpage.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('# reviewed'))
  await cpage.locator('.cm-ySelectionCaret').first().waitFor()
  // Both say saved once the server holds the edits.
  await cpage.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor()
  await interviewer.page.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor()
  // Who is connected.
  await cpage.locator('[data-testid=people]').filter({ hasText: 'Interviewer' }).waitFor()
  await interviewer.page.locator('[data-testid=people]').filter({ hasText: 'Ada' }).waitFor()
})

test('Ctrl+Enter runs; both consoles show output live; input() gets the line typed in the console', async () => {
  const cpage = candidate.page
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.press('Control+Enter')
  // Output while the program still runs (it waits for input).
  await consoleOf(cpage).filter({ hasText: 'name?' }).waitFor({ timeout: 15_000 })
  await consoleOf(interviewer.page).filter({ hasText: 'name?' }).waitFor({ timeout: 5_000 })
  assert.doesNotMatch(await consoleOf(interviewer.page).innerText(), /finished/, 'still running')
  const input = cpage.getByLabel('Program input (stdin)')
  await input.fill('Grace')
  await input.press('Enter')
  await consoleOf(cpage).filter({ hasText: 'hello Grace' }).waitFor({ timeout: 10_000 })
  await consoleOf(interviewer.page).filter({ hasText: 'hello Grace' }).waitFor({ timeout: 5_000 })
  // The finish line names its run (number and start time), so it cannot be read as another's.
  await consoleOf(cpage).filter({ hasText: /Run #\d+ \(started [^)]+\) finished: ok/ }).waitFor({ timeout: 10_000 })
  await shot(cpage, 'room-candidate')
})

test('the interviewer runs the hidden tests; the candidate page shows nothing of it', async () => {
  const ipage = interviewer.page
  await ipage.getByRole('tab', { name: 'Checks' }).click()
  const before = await consoleOf(candidate.page).innerText()
  await ipage.getByRole('button', { name: 'Run hidden tests' }).click()
  await ipage.locator('[data-testid=tests]').filter({ hasText: 'Including hidden tests' }).waitFor({ timeout: 30_000 })
  assert.match(await ipage.locator('[data-testid=tests]').innerText(), /test_hidden/)
  await ipage.getByRole('button', { name: 'Style check' }).click()
  await ipage.locator('[data-testid=lint]').filter({ hasNotText: 'No style check yet' }).waitFor({ timeout: 30_000 })
  await ipage.getByRole('tab', { name: 'Question' }).click()
  await shot(ipage, 'room-interviewer')
  // Give any leak time to arrive, then look.
  await candidate.page.waitForTimeout(500)
  assert.equal(await consoleOf(candidate.page).innerText(), before)
  assert.doesNotMatch(await candidate.page.content(), /test_hidden|Including hidden tests|Style check/)
})

test('the candidate page holds no hints, hidden tests, solution, notes or scorecard, nor received any', async () => {
  // A note with a canary, if this server has notes.
  const noteCanary = 'NOTE-CANARY-7f3a'
  await fetch(`${server.url}/api/interviews/${interview.id}/notes`, {
    method: 'POST', headers: { Authorization: `Bearer ${interview.tokens.interviewer}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: noteCanary }),
  })
  await candidate.page.reload()
  await candidate.page.waitForFunction(() => window.duetReady === true)
  await candidate.page.waitForTimeout(500)
  const secrets = [
    ...(question.hints?.strong ?? []), ...(question.hints?.red_flags ?? []), ...(question.follow_ups ?? []),
    // The solution's files that differ from the starter, and every hidden test file.
    ...Object.entries(question.solution).filter(([path, text]) => question.starter[path] !== text).map(([, text]) => text),
    ...Object.values(question.hidden_tests), noteCanary, 'test_hidden', '"hints"', '"red_flags"', '"hidden_tests"', '"solution"',
  ].filter((s) => typeof s === 'string' && s.length >= 6).map((s) => s.trim().slice(0, 60))
  const dom = await candidate.page.content()
  const { seen } = candidate
  for (const secret of secrets) {
    assert.ok(!dom.includes(secret), `DOM holds ${secret}`)
    for (const b of seen.bodies) assert.ok(!b.body.includes(secret), `${b.url} held ${secret}`)
    for (const f of seen.frames) assert.ok(!f.includes(secret), `a websocket frame held ${secret}`)
  }
  // The candidate's page loaded neither the interviewer's code nor its endpoints.
  for (const url of seen.urls) {
    assert.doesNotMatch(url, /interviewer-|scorecard|\/notes|\/api\/questions|\/timeline|\/lint/, url)
  }
  assert.match(dom, /paste a large block/, 'the candidate is told about the recorded signals')
  assert.deepEqual(seen.problems, [])
  assert.deepEqual(interviewer.seen.problems, [])
})

test('accessibility: no serious or critical axe violations in either room; Esc then Tab leaves the editor', async () => {
  await expectNoA11yProblems(candidate.page, 'candidate room')
  await expectNoA11yProblems(interviewer.page, 'interviewer room')
  const page = candidate.page
  await page.locator('.cm-content').click()
  await page.keyboard.press('Tab')
  assert.ok(await page.evaluate(() => document.activeElement?.classList.contains('cm-content')), 'Tab indents inside the editor')
  await page.keyboard.press('Escape')
  await page.keyboard.press('Tab')
  assert.ok(!(await page.evaluate(() => document.activeElement?.classList.contains('cm-content'))), 'Esc then Tab leaves it')
})

test('the server stops mid-session: the indicator warns; it restarts: the page reconnects and the edits reach the server', async () => {
  const page = candidate.page
  await server.stop('SIGKILL')
  await page.locator('[data-testid=saved]').filter({ hasText: /Offline/ }).waitFor({ timeout: 10_000 })
  await page.locator('.cm-content').click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type('# typed while the server was down\n')
  await page.locator('[data-testid=saved]').filter({ hasText: /edits not saved yet/ }).waitFor({ timeout: 5_000 })
  await shot(page, 'room-offline')
  server = await startServer({ port, dataDir })
  await page.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 20_000 })
  // A fresh interviewer page, loaded from the server alone, has the edit.
  const fresh = await openRoom(interview.urls.interviewer.replace(/#.*/, '') + '#token=' + interview.tokens.interviewer, 'fresh')
  await fresh.page.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('typed while the server was down'), null, { timeout: 10_000 })
  await fresh.context.close()
})

test('the reviewer opens the replay: earlier code and a run\'s output at its moment', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(interview.urls.reviewer)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  await page.locator('[data-testid=replay-code]').filter({ hasText: 'typed while the server was down' }).waitFor()
  // Scrub back to the first run's end: the code then, and its output as printed by then.
  await page.getByRole('button', { name: /run finished: ok/ }).first().click()
  await page.locator('[data-testid=replay-code]').filter({ hasNotText: 'typed while the server was down' }).waitFor()
  await page.locator('[data-testid=console]').filter({ hasText: 'hello Grace' }).waitFor()
  // And the scrubber itself: the very first moment is before the candidate's program.
  await page.locator('#scrub').fill('0')
  await page.locator('[data-testid=replay-code]').filter({ hasNotText: 'print("hello", name)' }).waitFor()
  await page.getByRole('button', { name: /run finished: ok/ }).first().click()
  await page.locator('[data-testid=console]').filter({ hasText: 'hello Grace' }).waitFor()
  await shot(page, 'replay')
  await expectNoA11yProblems(page, 'replay')
  assert.deepEqual(seen.problems, [])
  await context.close()
})

test('the interviewer scores with a run as evidence, submits, and ends the interview; later edits change nothing', async () => {
  const page = interviewer.page
  const api = (path, token = interview.tokens.interviewer) =>
    fetch(`${server.url}/api/interviews/${interview.id}${path}`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.json())
  await page.getByRole('tab', { name: 'Scorecard' }).click()
  await page.locator('#rate-coding_quality-3').check()
  await page.locator('#rate-debugging-4').check()
  await page.locator('#sc-notes').fill('Talked through the eviction order before coding.')
  await page.locator('#sc-level').selectOption('senior')
  await page.locator('#sc-rec').selectOption('yes')
  await page.locator('select[aria-label^="Attach run"]').first().selectOption('coding_quality')
  await page.getByRole('button', { name: 'Save', exact: true }).click()
  await page.getByText(/^Saved at/).waitFor()
  // Submit asks first, naming what it locks.
  const asked = new Promise((resolve) => page.once('dialog', (dialog) => { resolve(dialog.message()); void dialog.accept() }))
  await page.getByRole('button', { name: 'Submit scorecard' }).click()
  assert.match(await asked, /locks.*ratings.*notes.*level.*recommendation.*evidence/s)
  await page.getByText('Submitted: the scorecard is locked.').first().waitFor()
  const { scorecard } = await api('/scorecard')
  assert.ok(scorecard.submitted_at, 'submitted')
  assert.equal(scorecard.ratings.coding_quality, 3)
  assert.equal(scorecard.recommendation, 'yes')
  assert.equal(scorecard.evidence.coding_quality.length, 1, 'a run attached as evidence')
  await shot(page, 'room-interviewer-scored')
  await expectNoA11yProblems(page, 'scorecard')

  page.once('dialog', (dialog) => dialog.accept())
  await page.getByRole('button', { name: 'End interview' }).click()
  // The panel says so (a screen reader's announcer says it too: not the one looked at here).
  await page.getByRole('complementary', { name: 'Interviewer panel' }).getByText('The interview has ended.').waitFor()
  assert.equal((await api('')).status, 'ended')
  const before = (await api(`/snapshot?at=${Date.now()}`)).files['main.py']
  await candidate.page.locator('.cm-content').click()
  await candidate.page.keyboard.type('# after the end\n')
  await new Promise((resolve) => setTimeout(resolve, 500))
  const after = (await api(`/snapshot?at=${Date.now()}`)).files['main.py']
  assert.equal(after, before, 'edits after the end change nothing')
  assert.doesNotMatch(after, /after the end/)
})

test('the landing and debrief pages render and pass axe', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(server.url + '/')
  await page.getByRole('link', { name: 'Open the admin page' }).waitFor()
  await shot(page, 'landing')
  await expectNoA11yProblems(page, 'landing')
  await page.goto(`${server.url}/debrief/interview/${interview.id}#token=${interview.tokens.interviewer}`)
  await page.locator('#db-h').filter({ hasText: /Debrief/ }).waitFor()
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…'))
  await shot(page, 'debrief')
  await expectNoA11yProblems(page, 'debrief')
  assert.deepEqual(seen.problems, [])
  await context.close()
  await candidate.context.close()
  await interviewer.context.close()
})
