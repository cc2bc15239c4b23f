// Starts the real server (built SPA, SQLite in a temp dir) and the mock upstream on free ports,
// and Debian's Chromium through playwright-core. Screenshots go to ../test-results/e2e/.
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, existsSync } from 'node:fs'
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
  const [mockPort, appPort] = [await freePort(), await freePort()]
  const data = mkdtempSync(join(tmpdir(), 'acgw-e2e-'))
  const procs = []
  const env = { ...process.env, PYTHONPATH: join(ROOT, 'backend') }
  for (const name of Object.keys(env)) if (/^(DATABASE_|REDIS_|ADMIN_|SECRET_KEY|ENCRYPTION_KEYS)/.test(name)) delete env[name]
  procs.push(spawn(PYTHON, ['-m', 'app.devtools.mock_upstream', '--port', String(mockPort)], { env, stdio: 'ignore' }))
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
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  )
  const base = `http://127.0.0.1:${appPort}`
  const mock = `http://127.0.0.1:${mockPort}`
  await waitFor(`${mock}/_mock/stats`)
  await waitFor(`${base}/readyz`)
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  async function stop() {
    await browser.close()
    for (const proc of procs) proc.kill('SIGTERM')
  }
  return { base, mock, browser, stop, python: (code, args = []) => execFileSync(PYTHON, ['-c', code, ...args], { env }).toString() }
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

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false })
}
