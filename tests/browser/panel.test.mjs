// A panel of two (issue 21), as a story in Debian's Chromium against the real server: the admin
// adds two interviewers and seats both on one interview's panel; each signs in in a browser of
// their own and opens the room from "My interviews"; each writes a note and scores privately,
// and neither page receives the other's note or card while the interview is live; the debrief
// stays closed to each until they submit, then shows both cards with who scored them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, record, shot, adminApi,
} from './harness.mjs'

const ADA = { email: 'ada@example.com', name: 'Ada Lovelace', password: 'ada has a long password' }
const BEN = { email: 'ben@example.com', name: 'Ben Okri', password: 'ben has a long password' }

let server, dataDir, browser
const contexts = []

before(async () => {
  requireParts()
  dataDir = tempDir('duet-panel-')
  server = await startServer({ port: await freePort(), dataDir })
  browser = await launchBrowser()
})

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

const ready = (page) => page.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })

/** The admin adds `who` as an interviewer; they set their password from the one-time link. */
async function addInterviewer(who) {
  const invited = await adminApi(server.url, 'POST', '/api/people', { email: who.email, name: who.name, role: 'interviewer' })
  const token = invited.link.split('#token=')[1]
  const res = await fetch(`${server.url}/api/password-link`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ password: who.password }),
  })
  assert.equal(res.status, 204)
  return invited.person.id
}

/** `who` in a browser of their own: signed in, then in the room from "My interviews". */
async function intoTheRoom(who) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  contexts.push(context)
  const page = await context.newPage()
  const seen = record(page)
  // Submitting asks for a confirmation: this person confirms.
  page.on('dialog', (dialog) => void dialog.accept())
  await page.goto(`${server.url}/signin`)
  await ready(page)
  await page.getByLabel('Email').fill(who.email)
  await page.getByLabel('Password').fill(who.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${server.url}/me`)
  await ready(page)
  // Upcoming for the first in, live now for the second.
  await page.getByTestId('my-interviews').getByRole('link', { name: /^Room:/ }).click()
  await page.waitForURL(/\/interview\/[A-Za-z0-9_-]+\/interviewer$/)
  await ready(page)
  await page.getByTestId('editor').waitFor()
  return { page, seen }
}

/** Writes a private note and waits until the page lists it (its own event came back). */
async function writeNote(page, text) {
  await page.getByRole('tab', { name: 'Notes' }).click()
  await page.getByLabel('Private note (Alt+N)').fill(text)
  await page.getByLabel('Private note (Alt+N)').press('Enter')
  await page.getByRole('list', { name: 'Your notes' }).getByText(text).waitFor()
}

/** Rates debugging, writes the card's notes and waits until the card is saved. */
async function score(page, rating, notes) {
  await page.getByRole('tab', { name: 'Scorecard' }).click()
  await page.locator(`#rate-debugging-${rating}`).check()
  await page.locator('#sc-notes').fill(notes)
  await page.getByRole('button', { name: 'Save', exact: true }).click()
  await page.getByText(/^Saved at /).waitFor()
}

/** Every text frame the page's sockets received, as one string. */
const heard = (seen) => seen.frames.join('\n')

test('two interviewers on one panel score privately, live, and the debrief names both once each submits', async () => {
  const adaId = await addInterviewer(ADA)
  const benId = await addInterviewer(BEN)
  const created = await adminApi(server.url, 'POST', '/api/interviews', { title: 'Pairing', candidate_name: 'Lin', candidate_ref: 'cand-9' })
  await adminApi(server.url, 'PUT', `/api/interviews/${created.id}/panel`, { interviewers: [adaId, benId], reviewers: [] })

  const ada = await intoTheRoom(ADA)
  const ben = await intoTheRoom(BEN)

  // Ada writes a note and scores; then Ben writes his. Events reach a page in the room's order,
  // so once Ben's page lists his own note, anything of Ada's sent to him would be there too.
  await writeNote(ada.page, 'Ada: reads the traceback first')
  await score(ada.page, 4, 'Ada: calm and methodical')
  await ada.page.getByTestId('scorecard-author').filter({ hasText: `Scorecard of ${ADA.name}` }).waitFor()
  await writeNote(ben.page, 'Ben: slow start')
  assert.ok(!heard(ben.seen).includes('Ada:'), 'no note of Ada\'s reached Ben\'s page')
  assert.ok(!heard(ben.seen).includes(adaId), 'nothing of Ada\'s (note or card save) reached Ben\'s page')
  assert.equal(await ben.page.getByRole('list', { name: 'Your notes' }).getByRole('listitem').count(), 1)

  // Ben's card is his own: empty, under his name.
  await ben.page.getByRole('tab', { name: 'Scorecard' }).click()
  await ben.page.getByTestId('scorecard-author').filter({ hasText: `Scorecard of ${BEN.name}` }).waitFor()
  assert.equal(await ben.page.locator('#rate-debugging-4').isChecked(), false)
  assert.equal(await ben.page.locator('#sc-notes').inputValue(), '')
  await score(ben.page, 2, 'Ben: needed hints')
  assert.ok(!heard(ada.seen).includes('Ben:'), 'no note of Ben\'s reached Ada\'s page')
  assert.ok(!heard(ada.seen).includes(benId), 'nothing of Ben\'s reached Ada\'s page')
  await shot(ben.page, 'panel-ben-scores')

  // Ada submits. The debrief stays closed to Ben, who has not, and shows Ada only her card.
  await ada.page.getByRole('button', { name: 'Submit scorecard' }).click()
  await ada.page.getByText('Submitted: the scorecard is locked.').first().waitFor()
  const debrief = `${server.url}/debrief/interview/${created.id}`
  await ben.page.goto(debrief)
  await ben.page.getByTestId('debrief-refusal').waitFor()
  await ada.page.goto(debrief)
  await ada.page.getByTestId('debrief-scorer').first().waitFor()
  assert.deepEqual(await ada.page.getByTestId('debrief-scorer').allTextContents(), [ADA.name])
  assert.ok(!(await ada.page.content()).includes('Ben: needed hints'), 'Ben\'s draft stays hidden')

  // Ben submits: each now sees both cards, each named by who scored it.
  await ben.page.goBack()
  await ready(ben.page)
  await ben.page.getByRole('tab', { name: 'Scorecard' }).click()
  await ben.page.getByRole('button', { name: 'Submit scorecard' }).click()
  await ben.page.getByText('Submitted: the scorecard is locked.').first().waitFor()
  for (const { page } of [ada, ben]) {
    await page.goto(debrief)
    await page.getByTestId('debrief-scorer').nth(1).waitFor()
    assert.deepEqual((await page.getByTestId('debrief-scorer').allTextContents()).sort(), [ADA.name, BEN.name])
    await page.getByText(`by ${ADA.name}, submitted`).waitFor()
    await page.getByText(`by ${BEN.name}, submitted`).waitFor()
    await page.getByText('Ada: calm and methodical').waitFor()
    await page.getByText('Ben: needed hints').waitFor()
  }
  await shot(ada.page, 'panel-debrief')
  // From the debrief to the replay, on her session: its timeline names who wrote what.
  await ada.page.getByRole('link', { name: 'Open its replay' }).first().click()
  await ada.page.waitForURL(new RegExp(`/replay/${created.id}$`))
  await ada.page.getByText(`(${ADA.name})`).first().waitFor()
  await ada.page.getByText(`scorecard submitted by ${BEN.name}`).first().waitFor()
  assert.ok(!(await ada.page.content()).includes(adaId), 'no person id on the page')
  await shot(ada.page, 'panel-replay-names')
  assert.deepEqual(ada.seen.problems, [])
  assert.deepEqual(ben.seen.problems, [])
})
