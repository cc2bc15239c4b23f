// Account features end to end in Chromium, with a real SMTP server on loopback: a forgotten
// password reset through the mailed link (in Chinese), a confirmed e-mail address required to
// chat, two-factor sign-in with an authenticator code and a recovery code, an avatar upload, and
// the admin's mail settings with a test mail. Screenshots go to test-results/e2e/.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ADMIN, adminToken, api, openPage, shot, start, totp } from './harness.mjs'

let h
let token

before(async () => {
  h = await start()
  token = await adminToken(h.base)
  const channel = await api(h.base, token, 'POST', '/api/admin/channels', {
    name: 'Mock',
    base_url: `${h.mock}/v1`,
    api_key: 'sk-e2e-upstream-secret',
    models: ['mock-gpt'],
  })
  assert.equal(channel.status, 201)
})

after(async () => {
  await h?.stop()
})

const newPage = (options) => openPage(h.browser, options)

async function register(username, email) {
  const response = await fetch(`${h.base}/api/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, email, password: 'correct horse battery' }),
  })
  assert.equal(response.status, 201, await response.text())
}

async function signIn(page, username, password = 'correct horse battery') {
  await page.goto(`${h.base}/login`)
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('[data-test=login-submit]')
}

async function signOut(page) {
  await page.click('[data-test=user-menu]')
  await page.click('[data-test=logout]')
  await page.waitForURL(/\/login/)
}

const linkIn = (mail) => /https?:\/\/\S+token=[A-Za-z0-9_\-%]+/.exec(mail.text)[0]

test('a forgotten password is reset through the mailed link (in Chinese)', async () => {
  await register('wang', 'wang@example.com')
  // A key of wang's, to see the reset page's "also revoke my API keys" do what it says.
  const signedIn = await (await fetch(`${h.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'wang', password: 'correct horse battery' }),
  })).json()
  const created = await api(h.base, signedIn.access_token, 'POST', '/api/keys', { name: 'script' })
  assert.equal(created.status, 201)
  const keyWorks = async () =>
    (await fetch(`${h.base}/v1/models`, { headers: { Authorization: `Bearer ${created.body.key}` } })).status
  assert.equal(await keyWorks(), 200)
  const { page, context, problems } = await newPage({ locale: 'zh-CN' })
  await page.goto(`${h.base}/login`)
  await page.click('[data-test=to-forgot]')
  await page.fill('input[name=email]', 'wang@example.com')
  await shot(page, '20-forgot-password-zh')
  await page.click('[data-test=forgot-submit]')
  await page.waitForSelector('[data-test=reset-sent]')

  const mail = await h.nextMail('wang@example.com')
  assert.match(mail.subject, /重置您在 .+ 的密码/)
  assert.match(mail.html, /设置新密码/)
  const link = linkIn(mail)
  assert.ok(link.startsWith(`${h.base}/reset-password?token=`), link)

  await page.goto(link)
  await shot(page, '21a-reset-page-debug')
  await page.fill('input[name=password]', 'a brand new passphrase')
  await page.fill('input[name=repeat]', 'a brand new passphrase')
  await page.check('[data-test=revoke-keys] input')
  await shot(page, '21-reset-password-zh')
  await page.click('[data-test=reset-submit]')
  await page.waitForSelector('[data-test=reset-done]')
  assert.equal(await keyWorks(), 401, 'the key was revoked with the reset')

  // The link worked once.
  await page.goto(link)
  await page.fill('input[name=password]', 'yet another passphrase')
  await page.fill('input[name=repeat]', 'yet another passphrase')
  await page.click('[data-test=reset-submit]')
  await page.waitForSelector('[data-test=link-invalid]')

  await signIn(page, 'wang', 'a brand new passphrase')
  await page.waitForSelector('[data-test=composer]')
  assert.deepEqual(problems, [])
  await context.close()
})

test('a site that requires a confirmed address lets a user chat once the link is used', async () => {
  const settings = await api(h.base, token, 'PUT', '/api/admin/settings', { email_verification: true, require_verified_email: true })
  assert.equal(settings.status, 200)
  const { page, context, problems } = await newPage()
  try {
    await page.goto(`${h.base}/register`)
    await page.fill('input[name=username]', 'li')
    await page.fill('input[name=email]', 'li@example.com')
    await page.fill('input[name=password]', 'correct horse battery')
    await page.fill('input[name=repeat]', 'correct horse battery')
    await page.click('[data-test=register-submit]')
    await page.waitForSelector('[data-test=verify-banner]')
    await shot(page, '22-verify-banner')

    const mail = await h.nextMail('li@example.com')
    assert.match(mail.subject, /Confirm your e-mail address/)
    await page.goto(linkIn(mail))
    await page.waitForSelector('[data-test=verified]')
    await shot(page, '23-email-verified')
    await page.click('[data-test=continue]')
    await page.waitForSelector('[data-test=email-status] >> text=Confirmed')
    await page.goto(`${h.base}/`)
    await page.waitForSelector('[data-test=composer]')
    assert.equal(await page.locator('[data-test=verify-banner]').count(), 0)
    await page.fill('[data-test=composer]', 'Hello after confirming')
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-test=assistant-message]')
    assert.deepEqual(problems, [])
  } finally {
    await api(h.base, token, 'PUT', '/api/admin/settings', { email_verification: false, require_verified_email: false })
    await context.close()
  }
})

test('two-factor sign-in: enrol with the QR code, sign in with a code and with a recovery code', async () => {
  await register('zhao', 'zhao@example.com')
  const { page, context, problems } = await newPage()
  await signIn(page, 'zhao')
  await page.waitForSelector('[data-test=composer]')
  await page.goto(`${h.base}/account/profile`)
  await page.click('[data-test=enable-2fa]')
  await page.fill('[data-test=twofa-password] input[name=password]', 'correct horse battery')
  await page.locator('[data-test=twofa-password] button[type=submit]').click()
  await page.waitForSelector('[data-test=qr]')
  const qrLoaded = await page.locator('[data-test=qr]').evaluate((img) => img.complete && img.naturalWidth > 0)
  assert.ok(qrLoaded, 'the QR code renders')
  await shot(page, '24-2fa-scan')
  const secret = (await page.locator('[data-test=secret]').innerText()).trim()
  await page.fill('[data-test=twofa-scan] input[name=code]', totp(secret))
  await page.click('[data-test=twofa-confirm]')
  await page.waitForSelector('[data-test=recovery-codes]')
  const codes = await page.locator('[data-test=recovery-code]').allInnerTexts()
  assert.equal(codes.length, 10)
  await shot(page, '25-2fa-recovery-codes')
  await page.click('[data-test=codes-saved]')
  await page.waitForSelector('[data-test=two-factor-state] >> text=On')

  // Sign out; signing in now asks for a code.
  await signOut(page)
  await signIn(page, 'zhao')
  await page.waitForSelector('[data-test=code-form]')
  await shot(page, '26-2fa-sign-in')
  await page.fill('input[name=code]', '000000')
  await page.click('[data-test=code-submit]')
  await page.waitForSelector('[role=alert] >> text=The code is not right.')
  await page.fill('input[name=code]', totp(secret, 1))
  await page.click('[data-test=code-submit]')
  await page.waitForSelector('[data-test=composer]')

  // And once with a recovery code.
  await signOut(page)
  await signIn(page, 'zhao')
  await page.click('[data-test=toggle-recovery]')
  await page.fill('input[name=recovery_code]', codes[0])
  await page.click('[data-test=code-submit]')
  await page.waitForSelector('[data-test=composer]')
  await page.goto(`${h.base}/account/profile`)
  await page.waitForSelector('[data-test=codes-left] >> text=9 recovery codes left.')
  assert.deepEqual(problems, [])
  await context.close()

  // An admin resets it for someone who lost both.
  const users = await api(h.base, token, 'GET', '/api/admin/users?q=zhao')
  const reset = await api(h.base, token, 'DELETE', `/api/admin/users/${users.body.items[0].id}/2fa`)
  assert.equal(reset.status, 204)
  const answer = await fetch(`${h.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'zhao', password: 'correct horse battery' }),
  })
  assert.ok('access_token' in (await answer.json()))
})

test('an avatar is uploaded, shown, and a non-image refused', async () => {
  await register('sun', 'sun@example.com')
  const png = Buffer.from(
    h.python("import io,base64;from PIL import Image;b=io.BytesIO();Image.new('RGB',(300,200),(30,120,200)).save(b,'PNG');print(base64.b64encode(b.getvalue()).decode())").trim(),
    'base64',
  )
  const { page, context, problems } = await newPage()
  await signIn(page, 'sun')
  await page.waitForSelector('[data-test=composer]')
  await page.goto(`${h.base}/account/profile`)
  await page.setInputFiles('[data-test=avatar-file]', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') })
  await page.waitForSelector('[data-test=avatar-error]')
  await page.setInputFiles('[data-test=avatar-file]', { name: 'me.png', mimeType: 'image/png', buffer: png })
  await page.waitForSelector('[data-test=avatar-picker] [data-test=avatar-image]')
  const size = await page.locator('[data-test=avatar-picker] [data-test=avatar-image]').evaluate((img) => img.complete && img.naturalWidth)
  assert.equal(size, 256)
  assert.equal(await page.locator('[data-test=user-menu] [data-test=avatar-image]').count(), 1)
  await shot(page, '27-profile-avatar')
  assert.deepEqual(problems, [])
  await context.close()
})

test('an admin sees the mail settings and sends a test mail', async () => {
  const { page, context, problems } = await newPage()
  await page.goto(`${h.base}/admin/login`)
  await page.fill('input[name=username]', ADMIN.username)
  await page.fill('input[name=password]', ADMIN.password)
  await page.click('[data-test=login-submit]')
  await page.waitForURL(/\/admin$/)
  await page.click('[data-test=admin-nav] >> text=Mail')
  await page.waitForSelector('[data-test=mail-state] >> text=Ready')
  assert.equal(await page.inputValue('input[name=host]'), '127.0.0.1')
  await page.fill('input[name=test_to]', 'ops@example.com')
  await page.click('[data-test=mail-test-send]')
  await page.waitForSelector('[data-test=mail-test-ok]')
  const mail = await h.nextMail('ops@example.com')
  assert.match(mail.subject, /Test mail from/)
  await shot(page, '28-admin-mail')

  // Saved with a password: stored, never shown again.
  await page.fill('input[name=from_name]', 'E2E Gateway')
  await page.fill('input[name=smtp_password]', 'smtp-secret-e2e')
  await page.click('[data-test=mail-save]')
  await page.waitForSelector('text=Stored encrypted; leave empty to keep it.')
  assert.equal(await page.inputValue('input[name=smtp_password]'), '')
  const read = await api(h.base, token, 'GET', '/api/admin/mail')
  assert.equal(read.body.password_set, true)
  assert.ok(!JSON.stringify(read.body).includes('smtp-secret-e2e'))
  assert.deepEqual(problems, [])
  await context.close()
})
