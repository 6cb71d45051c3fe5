// A take-home as its candidate lives it, in Debian's Chromium against the real server and
// sandbox (issue 22): the start page (the question's title, the time limit, what is recorded, a
// scratch editor and a check that runs work), Start, the room with a countdown from the
// server's deadline and its warnings at 10 and 2 minutes (the page's clock moved on with
// Playwright's clock; the server's deadline is untouched), Submit with its confirmation, and the
// submitted page, which is all the link shows after a reload. The interviewer watches from
// their own link meanwhile: a read-only editor (the server drops staff edits on a take-home)
// under a banner that names the candidate's solo round, its stage and its countdown, and no
// control that would change the candidate's round (each says why it is off).
// Photographed in tests/browser/artifacts/.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, shot, axe,
} from './harness.mjs'

let server, dataDir, browser

before(async () => {
  requireParts()
  dataDir = tempDir('duet-take-home-')
  server = await startServer({ port: await freePort(), dataDir })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

const ready = (page) => page.waitForFunction(() => window.duetReady === true, null, { timeout: 20_000 })

test('a candidate starts a take-home, sees the clock run down, submits, and the link shows only "submitted"', async () => {
  const created = await adminApi(server.url, 'POST', '/api/interviews', {
    title: 'Screen', candidate_name: 'Ada Lovelace', question_id: 'lru-cache', mode: 'take_home', time_limit_minutes: 30,
  })
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  // The page's clock, so the story can move it on to the warnings; it runs at normal speed.
  await page.clock.install()
  await page.goto(created.urls.candidate)
  await ready(page)

  // The start page: the question's title, the time limit, what is recorded; no clock, no prompt.
  const start = page.getByTestId('start-page')
  await start.waitFor()
  assert.equal(await start.locator('h2').textContent(), 'LRU cache with O(1) get and put')
  assert.match(await page.getByTestId('time-limit').innerText(), /30 minutes/)
  assert.ok((await page.getByTestId('recorded').locator('li').count()) >= 3, 'what is recorded is listed')
  assert.equal(await page.getByTestId('countdown').count(), 0, 'no clock before Start')
  assert.doesNotMatch(await page.locator('body').innerText(), /Implement the class/, 'no prompt before Start')
  // The scratch editor takes typing; the check runs a program in the real sandbox.
  await page.locator('[data-testid=scratch-editor] .cm-content').click()
  await page.keyboard.type('print("hello")')
  assert.match(await page.locator('[data-testid=scratch-editor] .cm-content').innerText(), /print\("hello"\)/)
  await page.getByTestId('check').click()
  await page.getByTestId('check-note').filter({ hasText: 'Runs work' }).waitFor({ timeout: 30_000 })
  assert.match(await page.getByTestId('check-output').innerText(), /duet check ok/)
  assert.deepEqual(await axe(page), [], 'the start page: serious or critical accessibility violations')
  await shot(page, 'take-home-start')

  // The interviewer opens their link before the candidate starts: the banner says whose round
  // it is, that staff watch read-only, and that the clock has not started.
  const staffContext = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const staff = await staffContext.newPage()
  const staffSeen = record(staff)
  await staff.goto(created.urls.interviewer)
  await ready(staff)
  const staffBanner = staff.getByTestId('take-home-staff')
  await staffBanner.filter({ hasText: 'Not started' }).waitFor()
  assert.match(await staffBanner.innerText(), /the candidate's solo round/)
  assert.match(await staffBanner.innerText(), /read-only/)
  const staffEditor = staff.locator('[data-testid=editor] .cm-content').first()
  assert.equal(await staffEditor.getAttribute('contenteditable'), 'false', 'the interviewer cannot type')

  // Start: the round's page, with the prompt and a countdown from the server's deadline.
  await page.getByTestId('start').click()
  await ready(page)
  const countdown = page.getByTestId('countdown')
  await countdown.waitFor()
  assert.match(await countdown.innerText(), /^(30:00|29:[0-5]\d)$/, 'thirty minutes, from the server')
  await page.getByText('Implement the class').first().waitFor()
  const editor = page.locator('[data-testid=editor] .cm-content').first()
  await editor.waitFor()
  // The round runs programs and tests, but has no REPL (the server refuses one), and says so.
  const repl = page.getByTestId('repl')
  assert.equal(await repl.isDisabled(), true, 'no REPL in a take-home')
  assert.match(await repl.getAttribute('title'), /take-home round has no REPL/)
  assert.equal(await page.getByTestId('run').isDisabled(), false, 'the candidate can run')
  await shot(page, 'take-home-round')

  // The candidate writes; the interviewer's page (polling while not started) now counts down
  // the same round and shows the candidate's line, and their own typing changes nothing.
  await editor.click()
  await page.keyboard.press('Control+End')
  await page.keyboard.type('# solo work')
  await staffBanner.filter({ hasText: /Running: (30:00|29:[0-5]\d) left/ }).waitFor({ timeout: 20_000 })
  await staff.locator('[data-testid=editor]').getByText('# solo work').waitFor()
  assert.equal(await staffEditor.getAttribute('contenteditable'), 'false', 'still read-only while the round runs')
  const before = await staffEditor.innerText()
  await staffEditor.click()
  await staff.keyboard.type('staff was here')
  assert.equal(await staffEditor.innerText(), before, 'the interviewer\'s typing changes nothing')
  assert.doesNotMatch(await editor.innerText(), /staff was here/)
  assert.deepEqual(await axe(staff), [], 'the interviewer\'s take-home page: serious or critical accessibility violations')
  await shot(staff, 'take-home-staff')

  // The page's clock moves on: the warnings at 10 and 2 minutes.
  const warning = page.getByTestId('take-home-warning')
  assert.equal(await warning.isVisible(), false)
  await page.clock.fastForward('20:30')
  await warning.filter({ hasText: '10 minutes left' }).waitFor()
  assert.match(await countdown.innerText(), /^0?9:[0-5]\d$/)
  await page.clock.fastForward('08:00')
  await warning.filter({ hasText: '2 minutes left' }).waitFor()
  await shot(page, 'take-home-two-minutes')

  // Submit asks first; keeping on working changes nothing.
  await page.getByTestId('submit').click()
  await page.getByTestId('confirm').waitFor()
  await page.getByTestId('keep-working').click()
  assert.equal(await page.getByTestId('confirm').isVisible(), false)
  await page.getByTestId('submit').click()
  await page.getByTestId('confirm-submit').click()
  const submitted = page.getByTestId('submitted-page')
  await submitted.waitFor({ timeout: 15_000 })
  assert.match(await submitted.innerText(), /You submitted your take-home/)
  await shot(page, 'take-home-submitted')
  // The interviewer's banner follows the room's end to the submit.
  await staffBanner.filter({ hasText: 'Submitted by the candidate' }).waitFor({ timeout: 15_000 })
  assert.deepEqual(staffSeen.problems, [], 'no CSP violation or page error on the interviewer\'s page')
  await staffContext.close()

  // A reopened link shows only that.
  await page.reload()
  await ready(page)
  await submitted.waitFor()
  assert.equal(await page.locator('[data-testid=editor]').count(), 0, 'no editor after the submit')
  assert.doesNotMatch(await page.locator('body').innerText(), /Implement the class/)
  assert.deepEqual(await axe(page), [], 'the submitted page: serious or critical accessibility violations')
  assert.deepEqual(seen.problems, [], 'no CSP violation or page error')
  await context.close()
})

test('the interviewer watching a running take-home has no control that changes the candidate\'s round, and each says why', async () => {
  const created = await adminApi(server.url, 'POST', '/api/interviews', {
    title: 'Screen', candidate_name: 'Grace Hopper', question_id: 'lru-cache', mode: 'take_home', time_limit_minutes: 60,
  })
  // The candidate presses Start (their page's button calls this).
  const started = await fetch(`${server.url}/api/interviews/${created.id}/start`, {
    method: 'POST', headers: { Authorization: `Bearer ${created.tokens.candidate}`, 'X-Duet-Csrf': '1' },
  })
  assert.equal(started.status, 200, await started.text())

  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } })
  const staff = await context.newPage()
  const seen = record(staff)
  await staff.goto(created.urls.interviewer)
  await ready(staff)
  await staff.getByTestId('take-home-staff').filter({ hasText: 'Running' }).waitFor()

  // The question: fixed, as the server keeps it (a switch would be refused with 409).
  const picker = staff.locator('#q-pick')
  const switchBtn = staff.getByRole('button', { name: 'Switch', exact: true })
  for (const control of [picker, switchBtn]) {
    assert.equal(await control.isDisabled(), true)
    assert.match(await control.getAttribute('title'), /take-home's question is fixed/)
  }
  assert.match(await staff.locator('#tabpanel-question').innerText(), /take-home's question is fixed/, 'said in words too, not only on hover')

  // The files: no New file (nor rename or delete), and why.
  const newFile = staff.getByTestId('new-file')
  assert.equal(await newFile.isDisabled(), true)
  assert.match(await newFile.getAttribute('title'), /solo round: staff watch its files read-only/)
  assert.equal(await staff.locator('[data-testid=file-tree] .file-actions').count(), 0)

  // Run, REPL and Stop would reach the candidate's console: off, and why.
  for (const id of ['run', 'repl', 'stop']) {
    const button = staff.getByTestId(id)
    assert.equal(await button.isDisabled(), true, `${id} is off`)
    assert.match(await button.getAttribute('title'), /candidate's solo round/, `${id} says why`)
  }
  // Staff's own checks are private (the hidden tests, the style check): they stay.
  assert.equal(await staff.getByRole('button', { name: 'Run tests', exact: true }).isDisabled(), false)
  await staff.getByRole('tab', { name: 'Checks' }).click()
  assert.equal(await staff.getByRole('button', { name: 'Run hidden tests' }).isDisabled(), false)
  assert.equal(await staff.getByRole('button', { name: 'Style check' }).isDisabled(), false)

  // The board opens to look at, not to draw on.
  await staff.getByTestId('show-board').click()
  await staff.locator('[data-testid=board-canvas] canvas').first().waitFor({ timeout: 20_000 })
  assert.equal(await staff.locator('[data-testid=board] [data-testid=toolbar-rectangle]').count(), 0, 'no drawing tools')
  assert.deepEqual(await axe(staff), [], 'serious or critical accessibility violations, the board open')

  // End interview stays (the server lets staff stop a round), and says what it does to the round.
  assert.match(await staff.getByRole('button', { name: 'End interview' }).getAttribute('title'), /without a submit/)
  await shot(staff, 'take-home-staff-controls')
  const cdnFallback = /^CSP: Loading the font 'https:\/\/esm\.sh\/@excalidraw\//
  assert.deepEqual(seen.problems.filter((p) => !cdnFallback.test(p)), [], 'no CSP violation or page error')
  await context.close()
})
