// People, not tokens (issue 21), as stories in Debian's Chromium against the real server: the
// first admin comes from `duet user add`, signs in, invites an interviewer from the admin page
// and seats her on a new interview's panel; she sets her password from the one-time link, signs
// in, finds the interview under "My interviews" and opens the room with one click, with no
// token anywhere in a URL. Pages are photographed into tests/browser/artifacts/.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import {
  ROOT, requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, record, shot, axe,
} from './harness.mjs'

const BIN = process.env.DUET_BIN ?? join(ROOT, 'target', 'debug', 'duet')
const ADA = { email: 'ada@example.com', password: 'ada has a long password' }
const GRACE = { email: 'grace@example.com', password: 'grace has a long password' }

let server, dataDir, browser
const contexts = []

/** `duet user add` on the server's data dir, the password piped in on stdin. */
async function cliAddAdmin(url) {
  const child = spawn(BIN, ['user', 'add', ADA.email, '--name', 'Ada', '--role', 'admin', '--password-stdin'], {
    env: { ...process.env, DUET_DATA_DIR: dataDir, DUET_PUBLIC_URL: url },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  child.stdin.end(`${ADA.password}\n`)
  const code = await new Promise((resolve) => child.on('exit', resolve))
  assert.equal(code, 0, out)
}

before(async () => {
  requireParts()
  dataDir = tempDir('duet-people-')
  server = await startServer({ port: await freePort(), dataDir })
  browser = await launchBrowser()
  await cliAddAdmin(server.url)
})

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
  if (dataDir) removeDir(dataDir)
})

async function fresh() {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  contexts.push(context)
  const page = await context.newPage()
  return { context, page, seen: record(page) }
}

const ready = (page) => page.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })

async function signIn(page, who) {
  await page.goto(`${server.url}/signin`)
  await ready(page)
  await page.getByLabel('Email').fill(who.email)
  await page.getByLabel('Password').fill(who.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

test('a wrong password is refused with a plain message and the cookie is out of reach of scripts', async () => {
  const { page, seen } = await fresh()
  await signIn(page, { email: ADA.email, password: 'not the password at all' })
  await page.getByText('Wrong email or password.').waitFor()
  await signIn(page, ADA)
  await page.waitForURL(`${server.url}/me`)
  await ready(page)
  assert.equal(await page.evaluate(() => document.cookie), '', 'HttpOnly: the page cannot read its session')
  assert.deepEqual(seen.problems, [])
})

test('the admin invites an interviewer who sets a password, signs in and opens her interview from "My interviews" with no token', async () => {
  // Ada, signed in, invites Grace from the admin page and seats her on a new interview.
  const ada = await fresh()
  await signIn(ada.page, ADA)
  await ada.page.waitForURL(`${server.url}/me`)
  await ada.page.getByRole('link', { name: /^Admin$/ }).click()
  await ada.page.waitForURL(`${server.url}/admin`)
  await ready(ada.page)
  await ada.page.getByLabel('Email').fill(GRACE.email)
  await ada.page.getByLabel('Name', { exact: true }).fill('Grace Hopper')
  await ada.page.getByLabel('Role', { exact: true }).selectOption('interviewer')
  await ada.page.getByRole('button', { name: 'Invite' }).click()
  const link = await ada.page.getByTestId('password-link').inputValue()
  assert.match(link, /\/password#token=[A-Za-z0-9_-]{43}$/)
  await ada.page.getByLabel(/Grace Hopper \(grace@example.com\) as interviewer/).check()
  await ada.page.getByLabel('Candidate name').fill('Lin')
  await ada.page.getByRole('button', { name: 'Create interview' }).click()
  await ada.page.getByText(/^Created\./).waitFor()
  await shot(ada.page, 'people-admin')
  assert.deepEqual(await axe(ada.page), [], 'admin page: serious or critical accessibility violations')

  // Grace sets her password from the link, then signs in.
  const grace = await fresh()
  await grace.page.goto(link)
  await ready(grace.page)
  assert.equal(new URL(grace.page.url()).hash, '', 'the token leaves the address bar at once')
  await grace.page.getByLabel('New password').fill(GRACE.password)
  await grace.page.getByLabel('The same password again').fill(GRACE.password)
  await grace.page.getByRole('button', { name: 'Set password' }).click()
  await grace.page.getByText('You can sign in now.').waitFor()
  await signIn(grace.page, GRACE)
  await grace.page.waitForURL(`${server.url}/me`)
  await ready(grace.page)
  const upcoming = grace.page.getByTestId('mine-upcoming')
  await upcoming.getByText('Lin').waitFor()
  await shot(grace.page, 'people-my-interviews')
  assert.deepEqual(await axe(grace.page), [], 'my interviews: serious or critical accessibility violations')

  // One click opens the room as its interviewer, on her session alone.
  await upcoming.getByRole('link', { name: /^Room:/ }).click()
  await grace.page.waitForURL(/\/interview\/[A-Za-z0-9_-]+\/interviewer$/)
  await ready(grace.page)
  await grace.page.getByTestId('editor').waitFor()
  await grace.page.getByTestId('signals').waitFor({ state: 'attached' })
  await shot(grace.page, 'people-room-by-session')
  const withToken = grace.seen.urls.filter((u) => /[?#&]token=[^&]/.test(u))
  assert.deepEqual(withToken, [], 'no URL the page loaded or opened carries a token')
  assert.deepEqual(grace.seen.problems, [])

  // Signed out everywhere, her room link sends her to sign in again.
  await grace.page.goto(`${server.url}/me`)
  await ready(grace.page)
  await grace.page.getByRole('button', { name: 'Sign out everywhere' }).click()
  await grace.page.waitForURL(`${server.url}/signin`)
  await grace.page.goBack()
  await grace.page.waitForURL(/\/signin\?next=%2Fme$/)
})
