// Starts the real server (built SPA, SQLite in a temp dir) and the mock upstream on free ports,
// and Debian's Chromium through playwright-core. Screenshots go to ../test-results/e2e/.
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, existsSync, readdirSync, readFileSync } from 'node:fs'
import { createHmac } from 'node:crypto'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium } from 'playwright-core'

export const ROOT = resolve(import.meta.dirname, '../..')
export const PYTHON = process.env.PYTHON ?? join(ROOT, '.venv/bin/python')
export const SHOTS = join(ROOT, 'test-results/e2e')
export const ADMIN = { username: 'admin', password: 'e2e-admin-password-1' }
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer()
    server.unref()
    server.on('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => done(port))
    })
  })
}

async function waitForPort(port, ms = 30_000) {
  const { connect } = await import('node:net')
  const deadline = Date.now() + ms
  for (;;) {
    const open = await new Promise((done) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end()
        done(true)
      })
      socket.on('error', () => done(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function waitFor(url, ms = 60_000) {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      const response = await fetch(url)
      if (response.status < 500) return
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

export async function start() {
  if (!existsSync(join(ROOT, 'backend/app/frontend/index.html'))) throw new Error('build the SPA first (make frontend)')
  mkdirSync(SHOTS, { recursive: true })
  const [mockPort, appPort, smtpPort] = [await freePort(), await freePort(), await freePort()]
  const data = mkdtempSync(join(tmpdir(), 'acgw-e2e-'))
  const mailDir = join(data, 'mail')
  const procs = []
  const env = { ...process.env, PYTHONPATH: join(ROOT, 'backend') }
  for (const name of Object.keys(env)) if (/^(DATABASE_|REDIS_|ADMIN_|SECRET_KEY|ENCRYPTION_KEYS|SMTP_|PUBLIC_URL)/.test(name)) delete env[name]
  procs.push(spawn(PYTHON, ['-m', 'app.devtools.mock_upstream', '--port', String(mockPort)], { env, stdio: 'ignore' }))
  // A real SMTP server on loopback that keeps each mail as JSON (backend/tests/mail_server.py).
  procs.push(spawn(PYTHON, ['-m', 'tests.mail_server', '--port', String(smtpPort), '--dir', mailDir], { cwd: join(ROOT, 'backend'), env, stdio: 'ignore' }))
  procs.push(
    spawn(PYTHON, ['-m', 'app', 'serve'], {
      cwd: ROOT,
      env: {
        ...env,
        PORT: String(appPort),
        DATA_DIR: data,
        ADMIN_USERNAME: ADMIN.username,
        ADMIN_PASSWORD: ADMIN.password,
        TRUSTED_PROXIES: '127.0.0.1',
        IP_RPM: '0',
        DEFAULT_USER_RPM: '0',
        REGISTER_MAX_PER_IP_PER_HOUR: '1000',
        AUTH_ARGON2_TIME_COST: '1',
        AUTH_ARGON2_MEMORY_KIB: '8192',
        AUTH_ARGON2_PARALLELISM: '1',
        PUBLIC_URL: `http://127.0.0.1:${appPort}`,
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(smtpPort),
        SMTP_SECURITY: 'none',
        SMTP_FROM_ADDRESS: 'noreply@e2e.example',
        SMTP_RETRY_SECONDS: '0.2',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  )
  const base = `http://127.0.0.1:${appPort}`
  const mock = `http://127.0.0.1:${mockPort}`
  let browser
  try {
    await waitForPort(smtpPort)
    await waitFor(`${mock}/_mock/stats`)
    await waitFor(`${base}/readyz`)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
  } catch (error) {
    for (const proc of procs) proc.kill('SIGTERM') // nothing may outlive a failed start
    throw error
  }
  async function stop() {
    await browser.close()
    for (const proc of procs) proc.kill('SIGTERM')
  }
  /** The mails received so far ({to, subject, text, html}), oldest first. */
  function mails() {
    if (!existsSync(mailDir)) return []
    return readdirSync(mailDir)
      .filter((name) => name.endsWith('.json'))
      .sort()
      .map((name) => JSON.parse(readFileSync(join(mailDir, name), 'utf8')))
  }
  async function nextMail(to, seen = 0, ms = 15_000) {
    const deadline = Date.now() + ms
    for (;;) {
      const found = mails().filter((m) => m.to === to)
      if (found.length > seen) return found[seen]
      if (Date.now() > deadline) throw new Error(`no mail #${seen + 1} for ${to}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return { base, mock, browser, stop, mails, nextMail, python: (code, args = []) => execFileSync(PYTHON, ['-c', code, ...args], { env }).toString() }
}

/** The admin's API token, for setting things up around the browser. */
export async function adminToken(base) {
  const response = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(ADMIN),
  })
  return (await response.json()).access_token
}

export async function api(base, token, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : null }
}

/** A fresh browser context and page; `problems` collects the page's uncaught errors. */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, locale: 'en-US', ...options })
  const page = await context.newPage()
  const problems = []
  page.on('pageerror', (error) => problems.push(error.message))
  // Anything the Content-Security-Policy blocked is a problem too: the pages must not need it.
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to (load|execute|apply|connect)/.test(message.text())) problems.push(message.text())
  })
  return { page, context, problems }
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false })
}

/** The code an authenticator app shows for a base32 secret (RFC 6238, SHA-1, 6 digits, 30 s). */
export function totp(secret, stepsAhead = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const char of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(char).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000) + stepsAhead))
  const digest = createHmac('sha1', key).update(counter).digest()
  const offset = digest[digest.length - 1] & 0xf
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}
