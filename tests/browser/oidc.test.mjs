// Sign-in through the team's identity provider (issue 21): a real OpenID provider
// (`oidc-provider`, certified, in this process on loopback) and the real server in Debian's
// Chromium. A new person signs in through the provider and lands on "My interviews"; a forged
// state, a replayed callback, a code issued to another application, an address outside the
// allowed domains, a disabled person, and an ID token that is expired, for another audience,
// for another sign-in's nonce or wrongly signed are each refused and said so on the sign-in page.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import Provider from 'oidc-provider'
import {
  requireParts, freePort, startServer, tempDir, removeDir, launchBrowser, record, shot, adminApi,
} from './harness.mjs'

const CLIENT = { id: 'duet-test', secret: 'duet-test-client-secret-0123456789' }
/** Another application at the same provider: its codes and tokens are not Duet's. */
const OTHER = { id: 'another-app', secret: 'another-app-client-secret-0123456789' }

let provider, providerServer, server, dataDir, browser
const contexts = []

/** The provider's signing key (it publishes the public half at its JWKS endpoint). */
const KID = 'duet-test-signing-key'
const signing = generateKeyPairSync('rsa', { modulusLength: 2048 })
/** A key the provider never published, under the same key id: a forger's. */
const forger = generateKeyPairSync('rsa', { modulusLength: 2048 })

/**
 * When set, the provider's next token response carries `tamper(id_token)` instead of the ID
 * token it issued (the rest of the response, the access token included, is the provider's own).
 */
let tamper = null

const b64url = (value) => Buffer.from(value).toString('base64url')

/** The ID token `token` with its claims changed by `change`, signed RS256 with `key`. */
function resigned(token, change, key = signing.privateKey) {
  const [head, body] = token.split('.')
  const claims = { ...JSON.parse(Buffer.from(body, 'base64url')), ...change }
  const signed = `${head}.${b64url(JSON.stringify(claims))}`
  return `${signed}.${sign('sha256', Buffer.from(signed), key).toString('base64url')}`
}

before(async () => {
  requireParts()
  const providerPort = await freePort()
  const duetPort = await freePort()
  const issuer = `http://127.0.0.1:${providerPort}`
  provider = new Provider(issuer, {
    clients: [CLIENT, OTHER].map((client) => ({
      client_id: client.id,
      client_secret: client.secret,
      redirect_uris: [`http://127.0.0.1:${duetPort}/api/oidc/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    pkce: { required: () => true },
    // The ID token carries the scopes' claims (email, name), as most providers' do.
    conformIdTokenClaims: false,
    claims: { email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: true } },
    jwks: { keys: [{ ...signing.privateKey.export({ format: 'jwk' }), kid: KID, use: 'sig', alg: 'RS256' }] },
    // The development login takes any login and password: the login is the person's email.
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() { return { sub: id, email: id, email_verified: true, name: `Person ${id.split('@')[0]}` } },
      }
    },
  })
  // Around the provider's own token endpoint: the test may swap the ID token it answers.
  provider.use(async (ctx, next) => {
    await next()
    if (tamper && ctx.method === 'POST' && ctx.path === '/token' && ctx.body?.id_token) {
      ctx.body = { ...ctx.body, id_token: tamper(ctx.body.id_token) }
      tamper = null
    }
  })
  providerServer = await new Promise((resolve) => {
    const s = provider.listen(providerPort, '127.0.0.1', () => resolve(s))
  })
  dataDir = tempDir('duet-oidc-')
  server = await startServer({
    port: duetPort,
    dataDir,
    env: {
      DUET_OIDC_ISSUER: issuer,
      DUET_OIDC_CLIENT_ID: CLIENT.id,
      DUET_OIDC_CLIENT_SECRET: CLIENT.secret,
      DUET_OIDC_ALLOWED_DOMAINS: 'example.com',
      DUET_OIDC_CREATE_PEOPLE: 'true',
    },
  })
  browser = await launchBrowser()
})

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close()
  await server?.stop()
  await new Promise((resolve) => providerServer ? providerServer.close(resolve) : resolve())
  if (dataDir) removeDir(dataDir)
})

async function fresh() {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } })
  contexts.push(context)
  const page = await context.newPage()
  return { context, page, seen: record(page) }
}

const ready = (page) => page.waitForFunction(() => window.duetReady === true, null, { timeout: 15_000 })

/** From Duet's sign-in page through the provider's login and consent, as `login`. */
async function throughProvider(page, login) {
  await page.goto(`${server.url}/signin`)
  await ready(page)
  await page.getByTestId('sso').click()
  await page.waitForURL(/127\.0\.0\.1:\d+\/interaction\//)
  await page.locator('input[name=login]').fill(login)
  await page.locator('input[name=password]').fill('anything')
  await page.locator('button[type=submit]').click()
  await page.locator('button[type=submit]').filter({ hasText: /continue/i }).click()
}

test('a new person signs in through the identity provider and lands on their interviews; the callback works once', async () => {
  const { page, seen } = await fresh()
  let callback = null
  page.on('request', (r) => { if (r.url().includes('/api/oidc/callback')) callback = r.url() })
  await throughProvider(page, 'lin@example.com')
  await page.waitForURL(`${server.url}/me`)
  await ready(page)
  await page.getByTestId('me').filter({ hasText: 'Person lin · interviewer' }).waitFor()
  await shot(page, 'oidc-my-interviews')
  assert.deepEqual(seen.problems, [])

  // The provider's answer replayed (the same state and code): refused, nothing learned.
  assert.ok(callback, 'the provider sent the browser back to the callback')
  await page.goto(callback)
  await page.waitForURL(/\/signin\?oidc_error=state$/)
  await page.getByText('That sign-in was not started here').waitFor()
})

test('a forged state is refused, and so is an address outside the allowed domains', async () => {
  const forged = await fresh()
  await forged.page.goto(`${server.url}/api/oidc/callback?state=forged-state&code=forged-code`)
  await forged.page.waitForURL(/\/signin\?oidc_error=state$/)

  const outsider = await fresh()
  await throughProvider(outsider.page, 'mallory@elsewhere.test')
  await outsider.page.waitForURL(/\/signin\?oidc_error=domain$/)
  await outsider.page.getByText('Your email address is not one this server accepts.').waitFor()
  const me = await outsider.page.evaluate(async () => (await fetch('/api/session')).status)
  assert.equal(me, 401, 'no session for the outsider')
})

test('a person an admin disabled cannot sign in through the provider either', async () => {
  const invited = await adminApi(server.url, 'POST', '/api/people', { email: 'grace@example.com', name: 'Grace', role: 'interviewer' })
  await adminApi(server.url, 'PATCH', `/api/people/${invited.person.id}`, { state: 'disabled' })
  const { page } = await fresh()
  await throughProvider(page, 'grace@example.com')
  await page.waitForURL(/\/signin\?oidc_error=disabled$/)
  await page.getByText('Your account here is disabled').waitFor()
  const audit = await adminApi(server.url, 'GET', '/api/audit?limit=1')
  assert.equal(audit.entries[0].action, 'sign_in_failed')
  assert.equal(audit.entries[0].actor, 'grace@example.com')
  assert.equal(audit.entries[0].target, 'identity provider: disabled')
})

test('a code the provider issued to another application is refused', async () => {
  const { page } = await fresh()
  // The browser's trip to the provider is rewritten to ask for another client's code, with
  // Duet's own state and PKCE challenge: the callback then carries a code for another audience.
  await page.route(/\/api\/oidc\/start/, async (route) => {
    const response = await route.fetch({ maxRedirects: 0 })
    const to = new URL(response.headers().location)
    assert.equal(to.searchParams.get('client_id'), CLIENT.id)
    to.searchParams.set('client_id', OTHER.id)
    await route.fulfill({ response, headers: { ...response.headers(), location: to.toString() } })
  })
  await throughProvider(page, 'lin@example.com')
  await page.waitForURL(/\/signin\?oidc_error=provider$/)
  const me = await page.evaluate(async () => (await fetch('/api/session')).status)
  assert.equal(me, 401, 'no session from another application\'s code')
})

test('an ID token that is expired, for another audience, for another sign-in or wrongly signed is refused', async () => {
  const now = Math.floor(Date.now() / 1000)
  const cases = [
    ['expired', (t) => resigned(t, { iat: now - 7200, exp: now - 3600 })],
    ['for another audience', (t) => resigned(t, { aud: OTHER.id, azp: OTHER.id })],
    ['for another sign-in (nonce)', (t) => resigned(t, { nonce: 'a-nonce-from-another-sign-in' })],
    ['wrongly signed', (t) => resigned(t, {}, forger.privateKey)],
  ]
  for (const [fault, change] of cases) {
    const { page, seen } = await fresh()
    let tampered = false
    tamper = (token) => { tampered = true; return change(token) }
    await throughProvider(page, 'lin@example.com')
    await page.waitForURL(/\/signin\?oidc_error=id_token$/)
    await page.getByText('answer could not be trusted').waitFor()
    assert.ok(tampered, `${fault}: the provider's token response was the one changed`)
    const me = await page.evaluate(async () => (await fetch('/api/session')).status)
    assert.equal(me, 401, `${fault}: no session`)
    const audit = await adminApi(server.url, 'GET', '/api/audit?limit=1')
    assert.equal(audit.entries[0].action, 'sign_in_failed', fault)
    assert.equal(audit.entries[0].target, `identity provider: ID token ${fault}`)
    assert.deepEqual(seen.problems, [], fault)
  }
  // The same provider, untouched, still signs the same person in: only the changed tokens failed.
  const { page } = await fresh()
  await throughProvider(page, 'lin@example.com')
  await page.waitForURL(`${server.url}/me`)
})
