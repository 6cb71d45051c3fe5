// Webhooks on the admin page (issue 22), in Debian's Chromium against the real server: the
// admin adds an endpoint (a receiver on loopback; the server allows loopback for the test) and
// is shown its signing secret once; an interview is created and its event reaches the receiver;
// the delivery log shows it delivered, and Redeliver sends the same event again.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import {
  ADMIN, requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, adminApi, record, shot, axe,
} from './harness.mjs'

let server, dataDir, browser, receiver
const received = []

before(async () => {
  requireParts()
  receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      received.push({ signature: req.headers['x-duet-signature'], body: JSON.parse(body) })
      res.end('ok')
    })
  })
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  dataDir = tempDir('duet-webhooks-')
  server = await startServer({
    port: await freePort(),
    dataDir,
    env: { DUET_WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true', DUET_OUTBOX_POLL_MS: '50', DUET_WEBHOOK_RETRY_BASE_MS: '100' },
  })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  receiver?.close()
  if (dataDir) removeDir(dataDir)
})

async function until(cond, what) {
  for (let i = 0; i < 200; i++) {
    if (cond()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.fail(`timed out waiting for ${what}`)
}

test('the admin adds a webhook, sees its secret once, reads the delivery log and redelivers', async () => {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } })
  const page = await context.newPage()
  const seen = record(page)
  await page.goto(`${server.url}/admin`)
  await page.getByLabel('Admin token').fill(ADMIN)
  await page.getByRole('button', { name: 'Continue' }).click()

  const url = `http://127.0.0.1:${receiver.address().port}/hook`
  await page.getByLabel('URL').fill(url)
  await page.getByLabel('interview.started').uncheck()
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  const secret = await page.getByLabel('Webhook signing secret').inputValue()
  assert.match(secret, /^whsec_/)
  const endpoint = page.getByTestId('webhooks').getByRole('row').filter({ hasText: url })
  await endpoint.getByRole('cell', { name: url, exact: true }).waitFor()
  const events = await endpoint.getByRole('cell').nth(1).innerText()
  assert.ok(events.includes('interview.created') && !events.includes('interview.started'), events)

  const interview = await adminApi(server.url, 'POST', '/api/interviews', { title: 'Hooked', candidate_name: 'Ada Lovelace' })
  await until(() => received.length === 1, 'the interview.created delivery')
  assert.equal(received[0].body.type, 'interview.created')
  assert.equal(received[0].body.data.interview.id, interview.id)
  assert.match(received[0].signature, /^t=\d+,v1=[0-9a-f]{64}$/)

  await page.getByRole('button', { name: `Deliveries to ${url}` }).click()
  const row = page.getByRole('row').filter({ hasText: interview.id })
  await row.getByRole('cell', { name: 'delivered', exact: true }).waitFor()
  await shot(page, 'admin-webhooks')
  assert.deepEqual(await axe(page), [], 'admin-webhooks: serious or critical accessibility violations')

  await row.getByRole('button', { name: /^Redeliver interview\.created/ }).click()
  await until(() => received.length === 2, 'the redelivery')
  assert.equal(received[1].body.id, received[0].body.id, 'a redelivery is the same event')
  assert.equal(await page.getByLabel('Webhook signing secret').count(), 1)
  const listed = await adminApi(server.url, 'GET', '/api/webhooks')
  assert.ok(!JSON.stringify(listed).includes(secret), 'the secret is never listed again')
  assert.deepEqual(seen.problems, [])
  await context.close()
})
