// The REPL in Debian's Chromium against the real server and sandbox: the room's toolbar names
// its environment (python-data for a data interview); the candidate presses REPL, the program's
// names are in scope; the candidate and the interviewer each type a line into the console's
// input and both see both answers; exit() ends it.
//
//   cd web && npm run build && cd .. && cargo build --bin duet
//   DUET_BIN=$PWD/target/debug/duet node --test --test-concurrency=1 tests/browser/repl.test.mjs
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, shot } from './harness.mjs'

let server, dataDir, browser, interview
let candidate, interviewer

const MAIN = 'import pandas as pd\n\nsales = pd.DataFrame({"team": ["a", "b", "a"], "n": [1, 2, 3]})\nprint("loaded", len(sales))\n'

async function openRoom(url) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(url)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 10_000 })
  await page.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
  return { context, page, seen }
}

const consoleOf = (page) => page.locator('[data-testid=console]')
const input = (page) => page.locator('#console-input')

async function typeLine(page, line) {
  await input(page).waitFor({ state: 'visible' })
  await page.waitForFunction(() => !document.querySelector('#console-input')?.disabled, null, { timeout: 15_000 })
  await input(page).fill(line)
  await input(page).press('Enter')
}

before(async () => {
  requireParts()
  const port = await freePort()
  dataDir = tempDir('duet-browser-repl-')
  server = await startServer({ port, dataDir })
  browser = await launchBrowser()
  interview = await adminApi(server.url, 'POST', '/api/interviews', {
    title: 'Data', candidate_name: 'Ada', environment: 'python-data',
  })
  candidate = await openRoom(interview.urls.candidate)
  interviewer = await openRoom(interview.urls.interviewer)
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

test('both people type into one REPL in python-data and see each other\'s answers; exit() ends it', async () => {
  const cpage = candidate.page
  const ipage = interviewer.page
  for (const page of [cpage, ipage]) {
    assert.equal(await page.getByTestId('environment').innerText(), 'python-data')
  }
  await cpage.locator('[data-testid=editor] .cm-content').click()
  await cpage.keyboard.press('Control+a')
  await cpage.keyboard.insertText(MAIN)
  await cpage.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })

  await cpage.getByTestId('repl').click()
  for (const page of [cpage, ipage]) {
    await consoleOf(page).filter({ hasText: 'loaded 3' }).waitFor({ timeout: 30_000 })
  }
  await typeLine(cpage, 'sales.groupby("team")["n"].sum().to_dict()')
  for (const page of [cpage, ipage]) {
    await consoleOf(page).filter({ hasText: "{'a': 4, 'b': 2}" }).waitFor({ timeout: 15_000 })
  }
  await typeLine(ipage, 'int(sales["n"].max()) * 10')
  for (const page of [cpage, ipage]) {
    await consoleOf(page).filter({ hasText: /\b30\b/ }).waitFor({ timeout: 15_000 })
    // Each sees the line the other typed, as console input.
    await consoleOf(page).locator('.out-stdin').filter({ hasText: 'sales["n"].max()' }).waitFor({ timeout: 15_000 })
  }
  await shot(cpage, 'repl-candidate')
  await typeLine(cpage, 'exit()')
  // The REPL ended: the input line closes for both.
  for (const page of [cpage, ipage]) {
    await page.waitForFunction(() => document.querySelector('#console-input')?.disabled === true, null, { timeout: 15_000 })
  }
  for (const { seen } of [candidate, interviewer]) {
    assert.deepEqual(seen.problems, [])
  }
})
