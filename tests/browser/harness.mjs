// Shared pieces of the browser tests: the real `duet` binary on a loopback port, Debian's
// Chromium through playwright-core, and helpers to record everything a page receives.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const ARTIFACTS = join(ROOT, 'tests', 'browser', 'artifacts')
export const ADMIN = 'browser-test-admin-token-0123456789'
const BIN = process.env.DUET_BIN ?? join(ROOT, 'target', 'debug', 'duet')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

export function requireParts() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install it with 'apt-get install -y chromium' (scripts/test does)`)
  }
  if (!existsSync(BIN)) throw new Error(`the duet binary is missing at ${BIN}: run 'cargo build --bin duet'`)
  if (!existsSync(join(ROOT, 'web', 'dist', 'index.html'))) {
    throw new Error("the browser app is not built: run 'cd web && npm ci && npm run build'")
  }
  mkdirSync(ARTIFACTS, { recursive: true })
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

/**
 * Starts `duet serve` on a fixed loopback port (so a restart comes back at the same address),
 * with `env` added to its environment.
 */
export async function startServer({ port, dataDir, env = {} }) {
  const child = spawn(BIN, [
    'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir,
    '--questions-dir', join(ROOT, 'questions'), '--web-dir', join(ROOT, 'web', 'dist'),
  ], {
    env: { ...process.env, DUET_ADMIN_TOKEN: ADMIN, DUET_LOG: process.env.DUET_LOG ?? 'warn', DUET_SANDBOX_POOL: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  child.stderr.on('data', (d) => { log += d })
  await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`duet did not start in 20 s:\n${out}\n${log}`)), 20_000)
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('Duet listening on')) { clearTimeout(timer); resolve() }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`duet exited (${code}):\n${out}\n${log}`)) })
  })
  child.removeAllListeners('exit')
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    log: () => log,
    // SIGTERM by default: a graceful stop removes the server's warm sandbox containers. A server
    // killed with SIGKILL leaves them for the next server on the same data dir to reap, so a test
    // that kills one must start it again there before the data dir goes.
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill(signal)
      await exited
    },
  }
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true })
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

export async function adminApi(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return text ? JSON.parse(text) : null
}

/**
 * Records what a page receives: every HTTP response body and every websocket frame, plus CSP
 * violations and page errors (either fails a test).
 */
export function record(page) {
  const seen = { bodies: [], frames: [], urls: [], problems: [] }
  page.on('response', async (res) => {
    seen.urls.push(res.url())
    try { seen.bodies.push({ url: res.url(), body: (await res.body()).toString('utf8') }) } catch { /* redirects, aborted */ }
  })
  page.on('websocket', (ws) => {
    seen.urls.push(ws.url())
    ws.on('framereceived', (f) => seen.frames.push(typeof f.payload === 'string' ? f.payload : Buffer.from(f.payload).toString('latin1')))
  })
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/.test(msg.text())) seen.problems.push(`CSP: ${msg.text()}`)
  })
  page.on('pageerror', (err) => seen.problems.push(`page error: ${err.message}`))
  return seen
}

const AXE = join(ROOT, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js')

/** Runs axe-core in the page; answers the serious and critical violations. */
export async function axe(page) {
  // Injected through the devtools protocol (page.addScriptTag would be refused by the CSP).
  const { readFileSync } = await import('node:fs')
  await page.evaluate(readFileSync(AXE, 'utf8'))
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))
  })
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
}

export async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false })
}
