// The editor as a project, in Debian's Chromium against the real server and sandbox: the
// candidate and the interviewer in two browser contexts. The candidate makes a module in a
// folder, imports it from main.py and runs it; the interviewer sees in which file the
// candidate's cursor is, follows them there and back, runs the style check (its findings name
// the module), and both see a rename and a delete; a name outside the rules is refused with a
// message and creates nothing.
//
//   cd web && npm run build && cd .. && cargo build --bin duet
//   DUET_BIN=$PWD/target/debug/duet node --test --test-concurrency=1 tests/browser/workspace.test.mjs
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, axe, shot } from './harness.mjs'

let server, dataDir, browser, interview
let candidate, interviewer // { context, page, seen }

const CART = 'import os\n\n\ndef total(prices):\n    return sum(prices)\n'
const MAIN = 'from shop.cart import total\n\nprint("total", total([2, 3]))\n'

async function openRoom(url) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(url)
  await page.waitForFunction(() => window.duetReady === true, null, { timeout: 10_000 })
  await page.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
  return { context, page, seen }
}

/** The file the page's editor shows (the editor names it), and its text. */
const shown = (page) => page.locator('[data-testid=editor] .cm-content').getAttribute('data-path')
const editorText = (page) => page.locator('[data-testid=editor] .cm-content').innerText()
const tree = (page) => page.locator('[data-testid=file-tree]')
const treeFile = (page, path) => tree(page).locator(`li.tree-file[data-path="${path}"]`)
const tab = (page, path) => page.locator(`[data-testid=file-tabs] button.file-tab[data-path="${path}"]`)
const consoleOf = (page) => page.locator('[data-testid=console]')

async function waitShown(page, path) {
  await page.locator(`[data-testid=editor] .cm-content[data-path="${path}"]`).waitFor({ timeout: 10_000 })
}

async function newFile(page, path) {
  await page.getByTestId('new-file').click()
  await page.getByLabel('New file path').fill(path)
  await page.getByRole('button', { name: 'Create', exact: true }).click()
}

/** Replaces the text of the file shown with `text`, as one paste (no auto-indent). */
async function replaceText(page, text) {
  await page.locator('[data-testid=editor] .cm-content').click()
  await page.keyboard.press('Control+a')
  await page.keyboard.insertText(text)
}

before(async () => {
  requireParts()
  const port = await freePort()
  dataDir = tempDir('duet-browser-workspace-')
  server = await startServer({ port, dataDir })
  browser = await launchBrowser()
  interview = await adminApi(server.url, 'POST', '/api/interviews', {
    title: 'A project', candidate_name: 'Ada', question_id: 'lru-cache',
  })
  candidate = await openRoom(interview.urls.candidate)
  interviewer = await openRoom(interview.urls.interviewer)
})

after(async () => {
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

test('the candidate creates shop/cart.py; the interviewer sees the folder, the file, and that the candidate is in it', async () => {
  const cpage = candidate.page
  const ipage = interviewer.page
  assert.equal(await shown(cpage), 'main.py')
  await newFile(cpage, 'shop/cart.py')
  // The new file opens in a tab of its own, in the editor, as Python.
  await waitShown(cpage, 'shop/cart.py')
  assert.equal(await tab(cpage, 'shop/cart.py').getAttribute('aria-current'), 'true')
  await replaceText(cpage, CART)
  // The interviewer's tree shows the folder as a folder, with the file in it...
  await tree(ipage).locator('button.folder[data-path="shop"]').waitFor({ timeout: 10_000 })
  await treeFile(ipage, 'shop/cart.py').waitFor()
  // ...and a marker with the candidate's name on it: that is where the candidate's editor is.
  await treeFile(ipage, 'shop/cart.py').locator('[data-testid=file-marker]').filter({ hasText: 'Ada' }).waitFor({ timeout: 10_000 })
  assert.equal(await treeFile(ipage, 'main.py').locator('[data-testid=file-marker]').count(), 0)
  // The interviewer's own editor stays where it was until they choose.
  assert.equal(await shown(ipage), 'main.py')
  await shot(ipage, 'workspace-interviewer-sees-candidate-in-cart')
})

test('the interviewer follows the candidate into shop/cart.py, sees their cursor there, and back to main.py', async () => {
  const cpage = candidate.page
  const ipage = interviewer.page
  await ipage.getByTestId('follow').click()
  await waitShown(ipage, 'shop/cart.py')
  assert.match(await editorText(ipage), /def total\(prices\):/)
  // The candidate moves in the file: their caret shows in the interviewer's editor.
  await cpage.locator('[data-testid=editor] .cm-content').click()
  await cpage.keyboard.press('Control+End')
  await ipage.locator('.cm-ySelectionCaret').first().waitFor({ timeout: 10_000 })
  // The candidate goes to main.py; following, so does the interviewer.
  await tab(cpage, 'main.py').click()
  await waitShown(cpage, 'main.py')
  await waitShown(ipage, 'main.py')
  await replaceText(cpage, MAIN)
  await ipage.waitForFunction((main) => document.querySelector('[data-testid=editor] .cm-content')?.innerText.includes(main.split('\n')[0]), MAIN)
  // Follow off: the interviewer stays put when the candidate moves.
  await ipage.getByTestId('follow').click()
  await tab(cpage, 'shop/cart.py').click()
  await waitShown(cpage, 'shop/cart.py')
  await treeFile(ipage, 'shop/cart.py').locator('[data-testid=file-marker]').waitFor()
  assert.equal(await shown(ipage), 'main.py')
  await tab(cpage, 'main.py').click()
  await shot(cpage, 'workspace-candidate-main')
})

test('main.py imports the module: the candidate runs it and both consoles show its output', async () => {
  const cpage = candidate.page
  await cpage.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
  await cpage.getByRole('button', { name: 'Run', exact: true }).click()
  await consoleOf(cpage).filter({ hasText: 'total 5' }).waitFor({ timeout: 30_000 })
  await consoleOf(interviewer.page).filter({ hasText: 'total 5' }).waitFor({ timeout: 10_000 })
  await consoleOf(cpage).filter({ hasText: /Run #\d+ \(started [^)]+\) finished: ok/ }).waitFor({ timeout: 10_000 })
})

test('the style check covers every Python file and names shop/cart.py for its unused import', async () => {
  const ipage = interviewer.page
  await ipage.getByRole('tab', { name: 'Checks' }).click()
  await ipage.getByRole('button', { name: 'Style check' }).click()
  const lint = ipage.locator('[data-testid=lint]')
  await lint.filter({ hasNotText: 'No style check yet' }).waitFor({ timeout: 30_000 })
  const cart = lint.locator('section.lint-file[data-path="shop/cart.py"]')
  await cart.waitFor()
  assert.match(await cart.innerText(), /shop\/cart\.py/)
  assert.match(await cart.innerText(), /F401 'os' imported but unused/)
  await shot(ipage, 'workspace-lint')
  // A finding's place opens its file at its line.
  assert.equal(await shown(ipage), 'main.py')
  await cart.getByRole('button', { name: /1:1 F401/ }).click()
  await waitShown(ipage, 'shop/cart.py')
  assert.equal(await ipage.locator('[data-testid=editor] .cm-activeLine').innerText(), 'import os')
  await ipage.getByRole('tab', { name: 'Question' }).click()
})

test('each file keeps its own undo history; a data file opens as plain text', async () => {
  const cpage = candidate.page
  const typeAtEnd = async (text) => {
    await cpage.locator('[data-testid=editor] .cm-content').click()
    await cpage.keyboard.press('Control+End')
    await cpage.keyboard.insertText(text)
  }
  await tab(cpage, 'shop/cart.py').click()
  await waitShown(cpage, 'shop/cart.py')
  await typeAtEnd('# cart edit\n')
  await tab(cpage, 'main.py').click()
  await waitShown(cpage, 'main.py')
  await typeAtEnd('# main edit\n')
  // Undo in main.py undoes main.py's edit only.
  await cpage.keyboard.press('Control+z')
  await cpage.waitForFunction(() => !document.querySelector('[data-testid=editor] .cm-content').innerText.includes('# main edit'))
  assert.match(await editorText(cpage), /print\("total"/)
  // Back in cart.py, its own edit is still there, and its undo takes it back.
  await tab(cpage, 'shop/cart.py').click()
  await waitShown(cpage, 'shop/cart.py')
  assert.match(await editorText(cpage), /# cart edit/)
  await cpage.locator('[data-testid=editor] .cm-content').click()
  await cpage.keyboard.press('Control+z')
  await cpage.waitForFunction(() => !document.querySelector('[data-testid=editor] .cm-content').innerText.includes('# cart edit'))
  assert.match(await editorText(cpage), /def total\(prices\):/)
  // A CSV file is text: "import" in it is not highlighted as Python.
  await newFile(cpage, 'data/orders.csv')
  await waitShown(cpage, 'data/orders.csv')
  await cpage.keyboard.insertText('id,note\n1,import this\n')
  await cpage.locator('[data-testid=editor] .cm-content').filter({ hasText: 'import this' }).waitFor()
  assert.equal(await cpage.locator('[data-testid=editor] .tok-keyword').count(), 0)
  await tab(cpage, 'main.py').click()
  await waitShown(cpage, 'main.py')
  assert.ok(await cpage.locator('[data-testid=editor] .tok-keyword').count() > 0, 'main.py is highlighted as Python')
})

test('a name outside the rules is refused in the page with a message, and nothing is created', async () => {
  const cpage = candidate.page
  const before = await tree(cpage).innerText()
  await newFile(cpage, '../x.py')
  const note = cpage.getByTestId('files-note')
  await note.filter({ hasText: 'must not contain ..' }).waitFor({ timeout: 5_000 })
  await shot(cpage, 'workspace-refused-name')
  await cpage.getByRole('button', { name: 'Cancel' }).click()
  assert.equal(await tree(cpage).innerText(), before)
  // The server never saw it: the editor connection is still open and saving.
  await cpage.locator('[data-testid=saved]').filter({ hasText: /^Saved/ }).waitFor({ timeout: 10_000 })
  await interviewer.page.waitForTimeout(300)
  assert.equal(await tree(interviewer.page).locator('li.tree-file[data-path="x.py"]').count(), 0)
})

test('the candidate renames the module while the interviewer has it open; then the interviewer deletes it for both', async () => {
  const cpage = candidate.page
  const ipage = interviewer.page
  await treeFile(ipage, 'shop/cart.py').locator('button.file').click()
  await waitShown(ipage, 'shop/cart.py')
  // Rename: the interviewer's tab and editor keep the file under its new name.
  await cpage.getByRole('button', { name: 'Rename shop/cart.py' }).click()
  await cpage.getByLabel('Rename shop/cart.py to').fill('shop/basket.py')
  await cpage.getByRole('button', { name: 'Rename', exact: true }).click()
  await treeFile(ipage, 'shop/basket.py').waitFor({ timeout: 10_000 })
  assert.equal(await treeFile(ipage, 'shop/cart.py').count(), 0)
  await tab(ipage, 'shop/basket.py').waitFor()
  await waitShown(ipage, 'shop/basket.py')
  assert.match(await editorText(ipage), /def total\(prices\):/)
  await shot(ipage, 'workspace-renamed')
  // Delete, by the interviewer: gone for both; the candidate's tab of it closes.
  await tab(cpage, 'shop/basket.py').click()
  await waitShown(cpage, 'shop/basket.py')
  await ipage.getByRole('button', { name: 'Delete shop/basket.py' }).click()
  await ipage.getByTestId('confirm-delete').click()
  await treeFile(cpage, 'shop/basket.py').waitFor({ state: 'detached', timeout: 10_000 })
  assert.equal(await tree(cpage).locator('button.folder[data-path="shop"]').count(), 0, 'an empty folder is not shown')
  // Each editor shows the tab next to the deleted one, and the candidate is told why.
  await waitShown(cpage, 'data/orders.csv')
  await cpage.getByTestId('files-note').filter({ hasText: 'was deleted' }).waitFor()
  await waitShown(ipage, 'main.py')
  assert.equal(await tab(cpage, 'shop/basket.py').count(), 0)
  await shot(cpage, 'workspace-deleted')
})

test('no page error, no CSP violation, no serious accessibility problem, and neither editor socket was refused', async () => {
  for (const who of [candidate, interviewer]) {
    assert.deepEqual(who.seen.problems, [])
    assert.deepEqual(await axe(who.page), [])
    assert.equal(await who.page.getByText('The server refused a change').count(), 0)
    assert.equal(await who.page.getByText('code 1007').count(), 0)
  }
})
