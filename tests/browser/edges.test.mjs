// The edges of an interview, as stories in Debian's Chromium against the real server and
// sandbox (issue 18): the end everyone sees, presence within a second, prompts rendered as
// authors wrote them, a reload that keeps the run context, results a person can read, a layout
// that fits a laptop, a scorecard that keeps its drafts, and signals shown live. Every page is
// photographed at 1366x800 and 1024x700 (tests/browser/artifacts/).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, shot, axe, ADMIN,
} from './harness.mjs'

let server, dataDir, browser
const contexts = []

before(async () => {
  requireParts()
  dataDir = tempDir('duet-edges-')
  server = await startServer({ port: await freePort(), dataDir })
  browser = await launchBrowser()
})

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

const createInterview = (fields) => adminApi(server.url, 'POST', '/api/interviews', {
  title: 'Edges', candidate_name: 'Ada Lovelace', ...fields,
})

/** Opens a link in a fresh browser context (its own sessionStorage) and waits for the page. */
async function open(url, viewport = { width: 1366, height: 800 }) {
  const context = await browser.newContext({ viewport })
  contexts.push(context)
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(url)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  return { context, page, seen }
}

/** Screenshots at both laptop sizes, then back to the first. */
async function shots(page, name) {
  for (const [w, hgt] of [[1024, 700], [1366, 800]]) {
    await page.setViewportSize({ width: w, height: hgt })
    await page.waitForTimeout(150) // a layout pass after the resize
    await shot(page, `${name}-${w}x${hgt}`)
  }
}

const code = (page) => page.locator('[data-testid=editor] .cm-content').innerText()
const saved = (page) => page.locator('[data-testid=saved]')
const consoleOf = (page) => page.locator('[data-testid=console]')

async function accessible(page, name) {
  assert.deepEqual(await axe(page), [], `${name}: serious or critical accessibility violations`)
}

/** Replaces the whole program in the candidate's editor. */
async function typeProgram(page, text) {
  await page.locator('.cm-content').click()
  await page.keyboard.press('Control+a')
  await page.keyboard.press('Delete')
  // Typed line by line at the left edge (the editor would auto-indent after a colon).
  await page.evaluate((t) => {
    const view = document.querySelector('.cm-content').cmView.view
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } })
  }, text).catch(async () => { await page.keyboard.insertText(text) })
  await saved(page).filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
}

test('the interviewer ends the interview: both editors turn read-only under a banner, the candidate\'s keystrokes change nothing, and a reload still shows the end', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  const cpage = candidate.page
  const ipage = interviewer.page

  // The candidate writes something; it is saved.
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.press('Control+End')
  await cpage.keyboard.type('# my answer\n')
  await saved(cpage).filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
  await ipage.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('# my answer'))

  // The interviewer ends it from the room.
  ipage.once('dialog', (d) => void d.accept())
  await ipage.getByRole('button', { name: 'End interview' }).click()

  // The candidate's page turns over at once, from the live `end` event.
  await cpage.locator('[data-testid=ended]').filter({ hasText: 'This interview has ended' }).waitFor({ timeout: 5_000 })
  await saved(cpage).filter({ hasText: 'Interview ended: edits are not saved' }).waitFor({ timeout: 2_000 })
  assert.equal(await cpage.locator('.cm-content').getAttribute('contenteditable'), 'false', 'the candidate\'s editor is read-only')
  assert.equal(await cpage.getByRole('button', { name: 'Run', exact: true }).isDisabled(), true, 'nothing can be run')
  assert.equal(await cpage.locator('[data-testid=replay-link]').count(), 0, 'the candidate gets no replay link')

  // Typing changes nothing, and nothing claims to be saved.
  const before = await code(cpage)
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.type('# typed after the end')
  await cpage.waitForTimeout(400)
  assert.equal(await code(cpage), before)
  assert.equal(await saved(cpage).innerText(), 'Interview ended: edits are not saved')

  // The interviewer's editor is read-only too, with the replay and the debrief a click away.
  await ipage.locator('[data-testid=ended]').filter({ hasText: 'This interview has ended' }).waitFor({ timeout: 5_000 })
  assert.equal(await ipage.locator('.cm-content').getAttribute('contenteditable'), 'false', 'the interviewer\'s editor is read-only')
  assert.equal(await ipage.getByRole('button', { name: 'End interview' }).isDisabled(), true)
  await shots(cpage, 'ended-candidate')
  await shots(ipage, 'ended-interviewer')
  await accessible(cpage, 'ended candidate room')
  await accessible(ipage, 'ended interviewer room')

  // A reload reads the status on load: still ended, still read-only, nothing lost.
  await cpage.reload()
  await cpage.waitForFunction(() => window.duetReady === true)
  await cpage.locator('[data-testid=ended]').filter({ hasText: 'This interview has ended' }).waitFor()
  await saved(cpage).filter({ hasText: 'Interview ended: edits are not saved' }).waitFor()
  assert.equal(await cpage.locator('.cm-content').getAttribute('contenteditable'), 'false')
  await cpage.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('# my answer'))

  // The interviewer follows the links.
  const debriefHref = await ipage.locator('[data-testid=debrief-link]').getAttribute('href')
  await ipage.locator('[data-testid=replay-link]').click()
  await ipage.waitForURL(/\/replay\//)
  await ipage.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  await ipage.locator('[data-testid=replay-code]').filter({ hasText: '# my answer' }).waitFor()
  assert.doesNotMatch(ipage.url(), /token/, 'the token left the address bar')
  await ipage.goto(server.url + debriefHref)
  await ipage.locator('#db-h').filter({ hasText: 'Debrief' }).waitFor()
  await ipage.waitForFunction(() => !document.body.innerText.includes('Loading…'))
  assert.doesNotMatch(await ipage.locator('main').innerText(), /no access token|Cannot open/)
  await shots(ipage, 'ended-debrief')
  assert.deepEqual(candidate.seen.problems, [])
  assert.deepEqual(interviewer.seen.problems, [])
})

test('an edit that reaches the server after the end (the page missed the end event) closes the editor socket with 1008; the page stops reconnecting and says the edit was not saved', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  contexts.push(context)
  // This page never hears the `end` event: its events socket drops it on the way.
  await context.routeWebSocket(/\/events/, (ws) => {
    const upstream = ws.connectToServer()
    upstream.onMessage((message) => { if (!String(message).includes('"type":"end"')) ws.send(message) })
  })
  const cpage = await context.newPage()
  const seen = record(cpage)
  await cpage.goto(iv.urls.candidate)
  await cpage.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })
  await saved(cpage).filter({ hasText: /^Saved|^Connecting/ }).waitFor()
  const sockets = []
  cpage.on('websocket', (ws) => { if (ws.url().includes('/yjs')) sockets.push(ws) })

  const ended = await fetch(`${server.url}/api/interviews/${iv.id}/end`, { method: 'POST', headers: { Authorization: `Bearer ${iv.tokens.interviewer}` } })
  assert.equal(ended.status, 200)
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.press('Control+End')
  await cpage.keyboard.type('# typed after the end\n')

  await saved(cpage).filter({ hasText: 'Interview ended: edits are not saved' }).waitFor({ timeout: 5_000 })
  await cpage.locator('[data-testid=ended]').filter({ hasText: 'This interview has ended' }).waitFor()
  assert.equal(await cpage.locator('.cm-content').getAttribute('contenteditable'), 'false')
  // It stays closed: no new editor socket in the next seconds.
  await cpage.waitForTimeout(1500)
  assert.equal(sockets.length, 0, 'the page did not reconnect after the 1008 close')
  const snap = await fetch(`${server.url}/api/interviews/${iv.id}/snapshot?at=${Date.now()}`, { headers: { Authorization: `Bearer ${iv.tokens.interviewer}` } }).then((r) => r.json())
  assert.doesNotMatch(snap.files['main.py'], /typed after the end/)
  await shots(cpage, 'ended-refused-edit')
  assert.deepEqual(seen.problems.filter((p) => !/WebSocket/.test(p)), [])
})

test('each person appears in the other\'s header within 2 s of joining', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  // Both bounds are well under the 15 s awareness renewal that used to be the only way in.
  await Promise.all([
    candidate.page.locator('[data-testid=people]').filter({ hasText: 'Interviewer' }).waitFor({ timeout: 2_000 }),
    interviewer.page.locator('[data-testid=people]').filter({ hasText: 'Ada Lovelace' }).waitFor({ timeout: 2_000 }),
  ])
  // And someone who joins later (the candidate again, after a reload) too.
  await candidate.page.reload()
  await candidate.page.waitForFunction(() => window.duetReady === true)
  await candidate.page.locator('[data-testid=people]').filter({ hasText: 'Interviewer' }).waitFor({ timeout: 2_000 })
  await shots(interviewer.page, 'presence-interviewer')
})

test('prompts render as their authors wrote them: tables as tables, numbered steps as an ordered list, "503." inside its sentence, *n* as emphasis', async () => {
  const parser = await createInterview({ question_id: 'command-parser' })
  const { page, seen } = await open(parser.urls.candidate)
  const prompt = page.locator('aside .md')
  const table = prompt.locator('table')
  await table.waitFor()
  assert.deepEqual(await table.locator('thead th').allInnerTexts(), ['command', 'meaning', 'response'])
  assert.equal(await table.locator('tbody tr').count(), 5)
  assert.equal(await table.locator('tbody tr').first().locator('td code').first().innerText(), 'SET key value')
  assert.equal(await prompt.locator('ol > li').count(), 2, 'the numbered steps are an ordered list')
  assert.match(await prompt.locator('ol > li').first().innerText(), /^parse\(line\) returns/)
  assert.equal(await prompt.locator('pre code').count(), 1, 'the code block')
  assert.doesNotMatch(await prompt.innerText(), /\| ---|\| command \|/, 'no raw table pipes')
  await shots(page, 'prompt-table-candidate')

  const retry = await createInterview({ question_id: 'retry-backoff' })
  const r = await open(retry.urls.interviewer)
  const rprompt = r.page.locator('.question .md')
  await rprompt.waitFor()
  const para = rprompt.locator('p').filter({ hasText: 'fails now and then' })
  assert.match(await para.innerText(), /a timeout or a 503\. We want a decorator/, '"503." stays in its sentence')
  assert.equal(await rprompt.locator('ol').count(), 0, 'no list made of "503."')
  assert.equal(await rprompt.locator('em').filter({ hasText: /^n$/ }).count(), 1, '*n* is emphasis')
  assert.equal(await rprompt.locator('strong').filter({ hasText: 'last' }).count(), 1)
  assert.doesNotMatch(await rprompt.innerText(), /\*n\*|\*\*last\*\*/)

  const consumer = await createInterview({ question_id: 'idempotent-consumer' })
  const c = await open(consumer.urls.interviewer)
  const ctable = c.page.locator('.question .md table')
  await ctable.waitFor()
  assert.equal(await ctable.locator('tbody tr').count(), 4)
  await shots(c.page, 'prompt-table-interviewer')
  await accessible(page, 'prompt with a table')
  for (const p of [page, r.page, c.page]) assert.equal(await p.locator('.md script, .md [onerror], .md [onclick]').count(), 0)
  for (const problems of [seen.problems, r.seen.problems, c.seen.problems]) assert.deepEqual(problems, [], 'no CSP violation or page error')
})

test('a reload mid-run shows the running program with its output so far; the input line and Stop keep working; each finish line names its run', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const { page } = await open(iv.urls.candidate)
  // First the visible tests, which fail on the starter code.
  await page.getByRole('button', { name: 'Run tests' }).click()
  await page.locator('[data-testid=tests-summary]').waitFor({ timeout: 30_000 })
  const summary = await page.locator('[data-testid=tests-summary]').innerText()

  await typeProgram(page, 'print("ready")\nname = input("name? ")\nprint("hello", name)\nagain = input("more? ")\nprint("bye", again)\n')
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(page).filter({ hasText: 'name?' }).waitFor({ timeout: 15_000 })

  // Reload while the program waits for input.
  await page.reload()
  await page.waitForFunction(() => window.duetReady === true)
  await consoleOf(page).filter({ hasText: 'name?' }).waitFor({ timeout: 5_000 })
  assert.match(await consoleOf(page).innerText(), /Run #2 started by the candidate/)
  assert.equal(await page.locator('[data-testid=tests-summary]').innerText(), summary, 'the last test results are back')
  assert.equal(await page.getByRole('button', { name: 'Stop' }).isDisabled(), false, 'Stop works for the running program')
  await shots(page, 'reload-mid-run')

  // The input line feeds the restored run.
  const input = page.getByLabel('Program input (stdin)')
  assert.equal(await input.isDisabled(), false)
  await input.fill('Grace')
  await input.press('Enter')
  await consoleOf(page).filter({ hasText: 'hello Grace' }).waitFor({ timeout: 5_000 })
  assert.equal((await consoleOf(page).innerText()).split('name?').length - 1, 1, 'the output so far is shown once, not twice')

  // Stop ends it; its finish line names it.
  await page.getByRole('button', { name: 'Stop' }).click()
  await consoleOf(page).filter({ hasText: /Run #2 \(started [^)]+\) finished: stopped/ }).waitFor({ timeout: 5_000 })

  // A new run that replaces a running one: the old one's "stopped" line names the old run.
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(page).filter({ hasText: /Run #3 started/ }).waitFor({ timeout: 15_000 })
  await consoleOf(page).filter({ hasText: 'name?' }).last().waitFor()
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(page).filter({ hasText: /Run #4 started/ }).waitFor({ timeout: 15_000 })
  await consoleOf(page).filter({ hasText: /Run #3 \(started [^)]+\) finished: stopped/ }).waitFor({ timeout: 5_000 })
  const lines = (await consoleOf(page).innerText()).split('\n').filter((l) => /finished/.test(l))
  for (const line of lines) assert.match(line, /#\d+ \(started \d/, `a finish line names its run: ${line}`)
  await page.getByRole('button', { name: 'Stop' }).click()
  await consoleOf(page).filter({ hasText: /Run #4 \(started [^)]+\) finished/ }).waitFor({ timeout: 5_000 })
})

test('results read as a person would say them: failures first with full names, "N failed" for a failing test run, limits named; the console input and the saved state stay in view at 1366x800 and 1024x700', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const { page } = await open(iv.urls.candidate, { width: 1024, height: 700 })
  // A half-done cache: one visible test passes, the others fail.
  await typeProgram(page, [
    'class LRUCache:',
    '    def __init__(self, capacity):',
    '        self.capacity = capacity',
    '        self.data = {}',
    '',
    '    def get(self, key, default=None):',
    '        return self.data.get(key, default)',
    '',
    '    def put(self, key, value):',
    '        self.data[key] = value  # a deliberately long comment so that this line wraps in a narrow editor, and the wrapped part should start under the code, not at the left edge',
    '',
    '    def __len__(self):',
    '        return len(self.data)',
    '',
    '    def __contains__(self, key):',
    '        return key in self.data',
    '',
  ].join('\n'))
  await page.getByRole('button', { name: 'Run tests' }).click()
  const summary = page.locator('[data-testid=tests-summary]')
  await summary.waitFor({ timeout: 30_000 })
  const text = await summary.innerText()
  assert.match(text, /^\d+ failed, \d+ passed$/, `summary: ${text}`)
  const outcomes = await page.locator('[data-testid=tests] .case .outcome').allInnerTexts()
  const firstPass = outcomes.findIndex((o) => /passed/.test(o))
  assert.ok(firstPass > 0, 'at least one failure and one pass')
  assert.ok(outcomes.slice(firstPass).every((o) => /passed/.test(o)), `failures first: ${outcomes.join(' | ')}`)
  for (const name of await page.locator('[data-testid=tests] .case-name').all()) {
    const clipped = await name.evaluate((el) => el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > el.closest('.panel').getBoundingClientRect().right + 1)
    assert.equal(clipped, false, `test name shown whole: ${await name.innerText()}`)
    assert.match(await name.innerText(), /^test_visible\.py::test_/)
  }
  const finish = (await consoleOf(page).innerText()).split('\n').find((l) => /Test run #\d+ .* finished/.test(l))
  assert.match(finish, /finished: \d+ failed, \d+ passed/)
  assert.doesNotMatch(await page.locator('main').innerText(), /error \(exit|\d+ errors?\b/)

  // A wrapped line keeps its indentation: its continuation starts under its first character.
  const indent = await page.evaluate(() => {
    const line = [...document.querySelectorAll('.cm-line')].find((l) => l.textContent.includes('deliberately long comment'))
    const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT)
    const nodes = []
    while (walker.nextNode()) nodes.push(walker.currentNode)
    const range = document.createRange()
    const first = nodes.find((n) => /\S/.test(n.textContent))
    const at = first.textContent.search(/\S/)
    range.setStart(first, at); range.setEnd(first, at + 1)
    const codeLeft = range.getBoundingClientRect().left
    const all = document.createRange()
    all.selectNodeContents(line)
    const rects = [...all.getClientRects()]
    const tops = [...new Set(rects.map((r) => Math.round(r.top)))]
    const lastTop = Math.max(...tops)
    const contLeft = Math.min(...rects.filter((r) => Math.round(r.top) === lastTop).map((r) => r.left))
    return { codeLeft, contLeft, lines: tops.length }
  })
  assert.ok(indent.lines >= 2, 'the long line wraps at 1024 px')
  assert.ok(Math.abs(indent.contLeft - indent.codeLeft) < 3, `continuation at ${indent.contLeft}, code at ${indent.codeLeft}`)

  // Both laptop sizes: the console's input line and the saved state are in view, no scrolling.
  for (const [w, hgt] of [[1366, 800], [1024, 700]]) {
    await page.setViewportSize({ width: w, height: hgt })
    await page.waitForTimeout(150)
    for (const [what, locator] of [['console input', page.getByLabel('Program input (stdin)')], ['saved state', saved(page)], ['Run button', page.getByRole('button', { name: 'Run', exact: true })]]) {
      const box = await locator.boundingBox()
      assert.ok(box && box.y >= 0 && box.y + box.height <= hgt && box.x + box.width <= w, `${what} in view at ${w}x${hgt}: ${JSON.stringify(box)}`)
    }
    assert.equal(await page.evaluate(() => window.scrollY), 0)
    await shot(page, `results-${w}x${hgt}`)
  }

  // The output limit, named with what it is.
  await typeProgram(page, 'import sys\nfor _ in range(40):\n    sys.stdout.write("x" * 65536)\n')
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(page).filter({ hasText: /finished: output over 1 MiB: the rest was dropped/ }).waitFor({ timeout: 30_000 })
  assert.doesNotMatch(await consoleOf(page).innerText(), /output_limit/)
  // A program that never ends: stopped at a time limit, said in seconds.
  await typeProgram(page, 'while True:\n    pass\n')
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  // (Which limit: the wall-clock one, or CPU time where the server says so.)
  await consoleOf(page).filter({ hasText: /finished: stopped after \d+(\.\d)? s (\(the time limit\)|of CPU time \(the CPU limit\))/ }).waitFor({ timeout: 60_000 })
  assert.doesNotMatch(await consoleOf(page).innerText(), /: timeout\b/)
  await shots(page, 'results-limits')
  await accessible(page, 'results')
})

test('the admin form clears after Create, so a second click cannot create the same interview twice', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  contexts.push(context)
  const page = await context.newPage()
  await page.goto(`${server.url}/admin`)
  await page.getByLabel('Admin token').fill(ADMIN)
  await page.getByRole('button', { name: 'Continue' }).click()
  await page.getByLabel('Candidate name').fill('Katherine Johnson')
  await page.locator('#f-question option[value="top-k-words"]').waitFor({ state: 'attached' })
  await page.getByLabel('Question').selectOption('top-k-words')
  const create = page.getByRole('button', { name: 'Create interview' })
  await create.click()
  await page.getByLabel('Candidate link').waitFor()
  assert.equal(await page.getByLabel('Candidate name').inputValue(), '')
  assert.equal(await page.getByLabel('Question').inputValue(), '')
  await create.click()
  await page.waitForTimeout(500)
  const rows = (await adminApi(server.url, 'GET', '/api/interviews')).filter((r) => r.candidate_name === 'Katherine Johnson')
  assert.equal(rows.length, 1, 'one interview, however many clicks')
  // Each link says whom it is for; the private ones warn.
  assert.match(await page.locator('#link-interviewer-note').innerText(), /^Private: .*hidden tests.*Never send it to the candidate/)
  assert.match(await page.locator('#link-reviewer-note').innerText(), /^Private: /)
  assert.match(await page.locator('#link-candidate-note').innerText(), /^For the candidate/)
  await shots(page, 'admin-after-create')
  await accessible(page, 'admin page with links')

  // The links can be had again: new ones work and the old ones stop working.
  const oldCandidate = /#token=(.+)$/.exec(await page.getByLabel('Candidate link').inputValue())[1]
  page.once('dialog', (d) => void d.accept())
  await page.getByRole('button', { name: 'New links for Python pairing with Katherine Johnson' }).click()
  const reissued = page.locator('[data-testid=reissued]')
  await reissued.filter({ hasText: /New links for/ }).waitFor({ timeout: 5_000 })
  const fresh = /#token=(.+)$/.exec(await page.locator('#link-candidate-new').inputValue())[1]
  assert.notEqual(fresh, oldCandidate)
  const asCandidate = (tok) => fetch(`${server.url}/api/interviews/${rows[0].id}`, { headers: { Authorization: `Bearer ${tok}` } }).then((r) => r.status)
  assert.equal(await asCandidate(oldCandidate), 401, 'the old candidate link stops working')
  assert.equal(await asCandidate(fresh), 200, 'the new one works')
  await shots(page, 'admin-new-links')
})

test('the scorecard keeps a draft across a reload without pressing Save, shows evidence as kind, time and result, lets it be removed, and Submit asks first, naming what it locks; the debrief says what unlocks it', async () => {
  const iv = await createInterview({ question_id: 'lru-cache', candidate_ref: `loop-${Date.now()}` })
  const { page } = await open(iv.urls.interviewer)
  // Before any scorecard is submitted the debrief refuses in a sentence that says what unlocks it.
  const dpage = await (await browser.newContext()).newPage()
  await dpage.goto(`${server.url}/debrief/interview/${iv.id}#token=${iv.tokens.reviewer}`)
  const refusal = dpage.locator('[data-testid=debrief-refusal]')
  await refusal.waitFor()
  assert.match(await refusal.innerText(), /^The debrief opens once this interview's scorecard is submitted/)
  assert.doesNotMatch(await refusal.innerText(), /The debrief is submit/)
  await shot(dpage, 'debrief-refusal')
  await dpage.context().close()

  // A run to attach as evidence.
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(page).filter({ hasText: /Run #1 .* finished/ }).waitFor({ timeout: 15_000 })
  await page.getByRole('tab', { name: 'Scorecard' }).click()
  const attach = page.locator('select[aria-label^="Attach run"]').first()
  await attach.waitFor()
  await attach.selectOption('debugging')
  const item = page.getByRole('list', { name: 'Evidence for Debugging' }).getByRole('listitem')
  assert.match(await item.innerText(), /^run \S+( [AP]M)? · ok\s+Remove$/, 'evidence reads as kind, time and result')
  assert.doesNotMatch(await item.innerText(), /[A-Za-z0-9_-]{16}/, 'no run id shown')
  await item.getByRole('button', { name: /^Remove/ }).click()
  assert.equal(await page.getByRole('list', { name: 'Evidence for Debugging' }).count(), 0, 'the item was removed')
  await attach.selectOption('coding_quality')
  await page.getByRole('list', { name: 'Evidence for Coding quality' }).getByRole('listitem').waitFor()

  await page.locator('#rate-collaboration-4').check()
  await page.locator('#sc-notes').fill('Asked good questions about the capacity.')
  await page.getByText(/^Saved at/).waitFor({ timeout: 5_000 })
  await page.reload()
  await page.waitForFunction(() => window.duetReady === true)
  await page.getByRole('tab', { name: 'Scorecard' }).click()
  await page.locator('#sc-notes').waitFor()
  assert.equal(await page.locator('#rate-collaboration-4').isChecked(), true)
  assert.equal(await page.locator('#sc-notes').inputValue(), 'Asked good questions about the capacity.')
  assert.equal(await page.getByRole('list', { name: 'Evidence for Coding quality' }).getByRole('listitem').count(), 1, 'the evidence survived the reload')
  assert.equal(await page.getByRole('list', { name: 'Evidence for Debugging' }).count(), 0, 'and the removal too')
  // Submit: the question names what is locked; saying no locks nothing.
  const asked = new Promise((resolve) => page.once('dialog', (d) => { resolve(d.message()); void d.dismiss() }))
  await page.getByRole('button', { name: 'Submit scorecard' }).click()
  assert.match(await asked, /locks/)
  await page.waitForTimeout(300)
  assert.equal(await page.locator('#sc-notes').isDisabled(), false, 'declining the confirmation locks nothing')
  const card = await fetch(`${server.url}/api/interviews/${iv.id}/scorecard`, { headers: { Authorization: `Bearer ${iv.tokens.interviewer}` } }).then((r) => r.json())
  assert.equal(card.scorecard.submitted_at ?? null, null)
  await shots(page, 'scorecard-draft')

  // Submitted, the debrief opens: ratings with what they mean, level, recommendation, the
  // written notes, when it was scored, and the way to the replay.
  page.once('dialog', (d) => void d.accept())
  await page.getByRole('button', { name: 'Submit scorecard' }).click()
  await page.getByText('Submitted: the scorecard is locked.').first().waitFor()
  const anchor = card.rubric.find((r) => r.area === 'collaboration').levels[3]
  await page.goto(`${server.url}/debrief/interview/${iv.id}#token=${iv.tokens.interviewer}`)
  const table = page.locator('table.debrief')
  await table.waitFor()
  const collaboration = table.getByRole('row', { name: /^Collaboration/ })
  assert.match(await collaboration.innerText(), /4/)
  assert.ok((await collaboration.innerText()).includes(anchor.slice(0, 40)), 'the rating reads with its anchored meaning')
  assert.match(await table.getByRole('row', { name: /^Notes/ }).innerText(), /Asked good questions about the capacity\./)
  assert.match(await table.getByRole('row', { name: /^Scored/ }).innerText(), /submitted/)
  await table.getByRole('link', { name: 'Open its replay' }).waitFor()
  await shots(page, 'debrief-full')
  await accessible(page, 'debrief')
})

test('signals appear on the interviewer\'s panel as they happen: a large paste and leaving the tab', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  const signals = interviewer.page.locator('[data-testid=signals]')
  await signals.filter({ hasText: 'None so far' }).waitFor()
  await candidate.page.evaluate(() => {
    const data = new DataTransfer()
    data.setData('text/plain', '# pasted\n'.repeat(40))
    document.querySelector('.cm-content').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }))
  })
  await signals.filter({ hasText: 'pasted 360 characters' }).waitFor({ timeout: 5_000 })
  await candidate.page.evaluate(() => window.dispatchEvent(new Event('blur')))
  await signals.filter({ hasText: 'left the tab' }).waitFor({ timeout: 5_000 })
  assert.equal(await interviewer.page.locator('[data-testid=signals-count]').innerText(), '2')
  await shots(interviewer.page, 'signals-interviewer')
  await accessible(interviewer.page, 'signals panel')
  // A fresh interviewer page lists the ones so far.
  await interviewer.page.reload()
  await interviewer.page.waitForFunction(() => window.duetReady === true)
  await signals.filter({ hasText: 'pasted 360 characters' }).waitFor({ timeout: 5_000 })
  await signals.filter({ hasText: 'left the tab' }).waitFor()
})

test('the interviewer follows the candidate\'s cursor (toggle), an off-screen cursor shows an indicator that jumps to it, and caret labels get out of the way', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  const cpage = candidate.page
  const ipage = interviewer.page
  const lines = Array.from({ length: 120 }, (_, i) => `x${i + 1} = ${i + 1}`).join('\n') + '\n'
  await typeProgram(cpage, lines)
  // CodeMirror draws only the lines near its viewport: look at the end of the text.
  await ipage.waitForFunction(() => {
    const scroller = document.querySelector('[data-testid=editor] .cm-scroller')
    scroller.scrollTop = scroller.scrollHeight
    return scroller.querySelector('.cm-content').innerText.includes('x120 = 120')
  })

  // The candidate goes to the end; the interviewer is at the top and is told where they are.
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.press('Control+End')
  await ipage.evaluate(() => { document.querySelector('.cm-scroller').scrollTop = 0 })
  const indicator = ipage.locator('[data-testid=offscreen-cursor]')
  await indicator.filter({ hasText: /↓ Ada Lovelace is at line 121/ }).waitFor({ timeout: 5_000 })
  await shots(ipage, 'offscreen-cursor')
  await indicator.click()
  await indicator.waitFor({ state: 'hidden', timeout: 5_000 })
  assert.ok(await ipage.locator('.cm-ySelectionCaret').first().isVisible(), 'the candidate\'s caret is on screen after the jump')

  // Following: the interviewer's view goes where the candidate's cursor goes.
  await ipage.getByRole('button', { name: 'Follow the candidate' }).click()
  assert.equal(await ipage.getByRole('button', { name: 'Follow the candidate' }).getAttribute('aria-pressed'), 'true')
  await cpage.keyboard.press('Control+Home')
  await ipage.waitForFunction(() => document.querySelector('.cm-scroller').scrollTop < 5, null, { timeout: 5_000 })
  await cpage.keyboard.press('Control+End')
  await ipage.waitForFunction(() => document.querySelector('.cm-scroller').scrollTop > 200, null, { timeout: 5_000 })
  await indicator.waitFor({ state: 'hidden', timeout: 2_000 }) // no indicator while the cursor is in view

  // The caret's name label shows when the candidate moves, then fades so the line above is readable.
  await cpage.keyboard.press('ArrowUp')
  const label = ipage.locator('.cm-ySelectionInfo').first()
  await ipage.waitForFunction(() => Number(getComputedStyle(document.querySelector('.cm-ySelectionInfo')).opacity) > 0.9, null, { timeout: 2_000 })
  await ipage.waitForFunction(() => Number(getComputedStyle(document.querySelector('.cm-ySelectionInfo')).opacity) === 0, null, { timeout: 6_000 })
  assert.match(await label.innerText(), /Ada Lovelace/, 'the label still names the person (for hover and screen readers)')
})

test('the replay marks runs, notes, signals and the end on the scrubber, its event list follows the playhead, evidence jumps to the run\'s finish with its output, and stderr is red', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  const cpage = candidate.page
  const ipage = interviewer.page
  await typeProgram(cpage, 'import sys\nprint("to stdout")\nprint("to stderr", file=sys.stderr)\n')
  await cpage.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(cpage).filter({ hasText: /Run #1 .* finished/ }).waitFor({ timeout: 15_000 })
  await ipage.getByRole('tab', { name: 'Notes' }).click()
  await ipage.locator('#note-text').fill('Explains stderr versus stdout.')
  await ipage.locator('#note-text').press('Enter')
  await ipage.getByText('Note saved.').waitFor()
  await candidate.page.evaluate(() => window.dispatchEvent(new Event('blur')))
  await ipage.locator('[data-testid=signals]').filter({ hasText: 'left the tab' }).waitFor({ timeout: 5_000 })
  await ipage.getByRole('tab', { name: 'Scorecard' }).click()
  await ipage.locator('select[aria-label^="Attach run"]').first().selectOption('debugging')
  await ipage.getByRole('button', { name: 'Save', exact: true }).click()
  await ipage.getByText(/^Saved at/).waitFor()
  // Later edits, so the end of the replay is not the run's moment.
  await cpage.locator('.cm-content').click()
  await cpage.keyboard.press('Control+End')
  await cpage.keyboard.type('# after the run\n')
  await saved(cpage).filter({ hasText: /^Saved/ }).waitFor()
  ipage.once('dialog', (d) => void d.accept())
  await ipage.getByRole('button', { name: 'End interview' }).click()
  await ipage.locator('[data-testid=ended]').waitFor()

  const { page } = await open(iv.urls.reviewer)
  const options = await page.locator('#scrub-marks option').evaluateAll((os) => os.map((o) => o.label))
  for (const want of [/started a run/, /run finished: ok/, /note: Explains/, /signal: the candidate left the tab/, /ended the interview/]) {
    assert.ok(options.some((l) => want.test(l)), `the scrubber marks ${want}: ${options.join(' | ')}`)
  }
  // At the last moment the current event is the end, and it is in view in the list.
  const current = page.locator('.marks [aria-current=true]')
  await current.filter({ hasText: 'ended the interview' }).waitFor()
  const inView = await current.evaluate((li) => {
    const list = li.closest('.marks').getBoundingClientRect()
    const r = li.getBoundingClientRect()
    return r.top >= list.top - 1 && r.bottom <= list.bottom + 1
  })
  assert.ok(inView, 'the current event is scrolled into view')
  // The first moment: the current event moves back with the playhead.
  await page.locator('#scrub').fill('0')
  await page.locator('.marks [aria-current=true]').filter({ hasNotText: 'ended the interview' }).waitFor()
  // Evidence jumps to the run's finish: the whole output, stderr in red, the code as it ran.
  const evidence = page.locator('[data-testid=evidence-link]').first()
  await evidence.waitFor()
  assert.match(await evidence.innerText(), /^run .* · ok/)
  await evidence.click()
  await page.locator('[data-testid=console]').filter({ hasText: 'to stdout' }).waitFor()
  const stderr = page.locator('[data-testid=console] .out-stderr')
  await stderr.filter({ hasText: 'to stderr' }).waitFor()
  assert.doesNotMatch(await stderr.innerText(), /\[31m|\[0m/)
  assert.equal(await stderr.evaluate((el) => getComputedStyle(el).color), await page.evaluate(() => {
    const probe = document.createElement('span'); probe.style.color = 'var(--err)'; document.body.append(probe)
    const c = getComputedStyle(probe).color; probe.remove(); return c
  }), 'stderr is drawn in the error colour')
  await page.locator('[data-testid=replay-code]').filter({ hasNotText: '# after the run' }).waitFor()
  await page.locator('.marks [aria-current=true]').filter({ hasText: /run finished/ }).waitFor()
  await shots(page, 'replay-evidence')
  await accessible(page, 'replay')
})

test('a question switch is named by its title on both sides and resets the results of the old question', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  await candidate.page.getByRole('button', { name: 'Run tests' }).click()
  await candidate.page.locator('[data-testid=tests-summary]').waitFor({ timeout: 30_000 })
  await interviewer.page.locator('[data-testid=tests-summary]').waitFor({ timeout: 5_000 })
  await interviewer.page.locator('#q-pick option[value="command-parser"]').waitFor({ state: 'attached' })
  await interviewer.page.locator('#q-pick').selectOption('command-parser')
  interviewer.page.once('dialog', (d) => void d.accept())
  await interviewer.page.getByRole('button', { name: 'Switch' }).click()
  for (const p of [candidate.page, interviewer.page]) {
    await p.locator('[data-testid=question-note]').filter({ hasText: 'The question is now “Parse and run commands with match/case”' }).waitFor({ timeout: 10_000 })
    await p.locator('[data-testid=tests]').filter({ hasText: 'No test run yet for “Parse and run commands with match/case”' }).waitFor()
  }
  await candidate.page.locator('aside .md table').waitFor()
  await shots(candidate.page, 'question-switched-candidate')
})

test('a Run while the network is down says why it did not start', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const { context, page } = await open(iv.urls.candidate)
  await context.setOffline(true)
  await page.getByRole('button', { name: 'Run', exact: true }).click()
  await page.locator('[data-testid=run-note]').filter({ hasText: 'Could not start: the server cannot be reached' }).waitFor({ timeout: 5_000 })
  await shots(page, 'run-offline')
  await context.setOffline(false)
})

test('links issued again: a page open on the old link is closed for good and says why; the new link opens the room', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const cpage = candidate.page
  await saved(cpage).filter({ hasText: /^Saved|^Connecting/ }).waitFor()
  let sockets = 0
  cpage.on('websocket', () => { sockets += 1 })
  const fresh = await adminApi(server.url, 'POST', `/api/interviews/${iv.id}/links`)
  const stopped = cpage.locator('[data-testid=stopped]')
  await stopped.filter({ hasText: /This page is closed: .*replaced/ }).waitFor({ timeout: 5_000 })
  await saved(cpage).filter({ hasText: 'Link replaced: edits are not saved' }).waitFor()
  assert.equal(await cpage.locator('.cm-content').getAttribute('contenteditable'), 'false')
  await cpage.waitForTimeout(1500)
  assert.equal(sockets, 0, 'no reconnecting with a replaced link')
  await shots(cpage, 'link-replaced')
  // The new candidate link opens the room.
  const again = await open(fresh.urls.candidate)
  await saved(again.page).filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
  assert.equal(await again.page.locator('.cm-content').getAttribute('contenteditable'), 'true')
})

test('a switch to another question and back restores the candidate\'s code for both people', async () => {
  const iv = await createInterview({ question_id: 'lru-cache' })
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  const cpage = candidate.page
  const ipage = interviewer.page
  await typeProgram(cpage, 'class LRUCache:\n    pass  # my LRU answer\n')
  await ipage.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('# my LRU answer'))
  const switchTo = async (id) => {
    await ipage.getByRole('tab', { name: 'Question' }).click()
    await ipage.locator(`#q-pick option[value="${id}"]`).waitFor({ state: 'attached' })
    await ipage.locator('#q-pick').selectOption(id)
    const asked = new Promise((resolve) => ipage.once('dialog', (d) => { resolve(d.message()); void d.accept() }))
    await ipage.getByRole('button', { name: 'Switch' }).click()
    return asked
  }
  assert.match(await switchTo('command-parser'), /kept and comes back/)
  for (const p of [cpage, ipage]) {
    await p.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('class CommandError'), null, { timeout: 10_000 })
    await p.locator('[data-testid=question-note]').filter({ hasText: /starter code/ }).waitFor({ timeout: 10_000 })
  }
  await typeProgram(cpage, '# parser work\n')
  await switchTo('lru-cache')
  for (const p of [cpage, ipage]) {
    await p.waitForFunction(() => document.querySelector('.cm-content').innerText.includes('# my LRU answer'), null, { timeout: 10_000 })
    await p.locator('[data-testid=question-note]').filter({ hasText: /The question is now “LRU cache.*Its code is back/ }).waitFor({ timeout: 10_000 })
  }
  assert.doesNotMatch(await code(cpage), /parser work/)
  await shots(cpage, 'question-switched-back')
  // The replay names the switches by title.
  const { page } = await open(iv.urls.reviewer)
  await page.locator('.marks').getByText(/question switched to “Parse and run commands with match\/case”/).waitFor()
})

test('a program waits 30 s on input() and then finishes normally; what the candidate types shows on the interviewer\'s console as it is sent', async () => {
  const iv = await createInterview({})
  const candidate = await open(iv.urls.candidate)
  const interviewer = await open(iv.urls.interviewer)
  await typeProgram(candidate.page, 'name = input("name? ")\nprint("hello", name)\n')
  await candidate.page.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(candidate.page).filter({ hasText: 'name?' }).waitFor({ timeout: 15_000 })
  await consoleOf(interviewer.page).filter({ hasText: 'name?' }).waitFor({ timeout: 15_000 })
  // The candidate thinks for longer than the 10 s a busy program may run.
  await candidate.page.waitForTimeout(30_000)
  const input = candidate.page.getByLabel('Program input (stdin)')
  await input.fill('Grace')
  await input.press('Enter')
  await consoleOf(candidate.page).filter({ hasText: 'hello Grace' }).waitFor({ timeout: 10_000 })
  await consoleOf(interviewer.page).filter({ hasText: /Grace\s+hello Grace/ }).waitFor({ timeout: 10_000 })
  await consoleOf(candidate.page).filter({ hasText: /finished: ok/ }).waitFor({ timeout: 10_000 })
  const seen = await consoleOf(interviewer.page).innerText()
  assert.equal(seen.split('Grace\n').length - 1 >= 1, true, `the typed line shows once on the interviewer's console: ${seen}`)
  assert.doesNotMatch(await consoleOf(candidate.page).innerText(), /timeout|stopped after/, 'thinking time is not a timeout')
  await shots(interviewer.page, 'typed-input-on-the-interviewers-console')
})
