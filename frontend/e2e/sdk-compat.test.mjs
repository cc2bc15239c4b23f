// Real clients against the real server: the Vercel AI SDK's default OpenAI provider (which speaks
// the Responses API), its Chat Completions provider, and its Anthropic provider (Messages API), all
// through the gateway to the mock upstream (a Chat Completions channel, and one speaking the
// Responses API).
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createAnthropic } from '@ai-sdk/anthropic'
import { createOpenAI } from '@ai-sdk/openai'
import { generateText, jsonSchema, streamText, tool } from 'ai'
import { adminToken, api, start } from './harness.mjs'

let server
let key

before(async () => {
  server = await start()
  const token = await adminToken(server.base)
  const channel = await api(server.base, token, 'POST', '/api/admin/channels', {
    name: 'mock',
    base_url: `${server.mock}/v1`,
    api_key: 'sk-e2e-upstream-key',
    models: ['mock-gpt', 'mock-tools', 'mock-reasoner'],
  })
  assert.equal(channel.status, 201)
  const native = await api(server.base, token, 'POST', '/api/admin/channels', {
    name: 'speaks-responses',
    base_url: `${server.mock}/native/v1`,
    api_key: 'sk-e2e-upstream-key',
    models: ['gpt-native'],
    model_mapping: { 'gpt-native': 'mock-tools' },
    responses_api: true,
  })
  assert.equal(native.status, 201)
  key = (await api(server.base, token, 'POST', '/api/keys', { name: 'sdk' })).body.key
})

after(async () => {
  await server?.stop()
})

async function upstreamPaths() {
  const response = await fetch(`${server.mock}/_mock/requests`)
  return (await response.json()).map((r) => r.path)
}

const FULL = 'Hello from the mock upstream.'
const STREAMED = 'Hello from the mock upstream. Hello from the'

test('the AI SDK default OpenAI provider (Responses API): text, stream, tools', async () => {
  const openai = createOpenAI({ baseURL: `${server.base}/v1`, apiKey: key })
  const before = (await upstreamPaths()).length
  const answer = await generateText({ model: openai('mock-gpt'), prompt: 'hello there' })
  assert.equal(answer.text, FULL)
  assert.equal(answer.usage.outputTokens, 8)
  const stream = streamText({ model: openai('mock-gpt'), prompt: 'hi' })
  let text = ''
  for await (const part of stream.textStream) text += part
  assert.equal(text, STREAMED)
  const called = await generateText({
    model: openai('mock-tools'),
    prompt: 'Weather in Shanghai?',
    tools: {
      get_weather: tool({
        description: 'The weather in a city',
        inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
      }),
    },
  })
  assert.equal(called.toolCalls[0].toolName, 'get_weather')
  assert.deepEqual(called.toolCalls[0].input, { city: 'Shanghai' })
  // The channel only speaks Chat Completions: the gateway translated each call.
  const paths = (await upstreamPaths()).slice(before)
  assert.deepEqual(paths, ['/v1/chat/completions', '/v1/chat/completions', '/v1/chat/completions'])
})

test('the AI SDK default OpenAI provider, passed through to a channel speaking the Responses API', async () => {
  const openai = createOpenAI({ baseURL: `${server.base}/v1`, apiKey: key })
  const before = (await upstreamPaths()).length
  const answer = await generateText({ model: openai('gpt-native'), prompt: 'hello there' })
  assert.equal(answer.text, STREAMED)
  assert.equal(answer.usage.outputTokens, 8)
  let text = ''
  for await (const part of streamText({ model: openai('gpt-native'), prompt: 'hi' }).textStream) text += part
  assert.equal(text, STREAMED)
  const called = await generateText({
    model: openai('gpt-native'),
    prompt: 'Weather in Shanghai?',
    tools: {
      get_weather: tool({
        description: 'The weather in a city',
        inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
      }),
    },
  })
  assert.equal(called.toolCalls[0].toolName, 'get_weather')
  assert.deepEqual(called.toolCalls[0].input, { city: 'Shanghai' })
  const paths = (await upstreamPaths()).slice(before)
  assert.deepEqual(paths, ['/native/v1/responses', '/native/v1/responses', '/native/v1/responses'])
})

test("the AI SDK's Chat Completions provider", async () => {
  const openai = createOpenAI({ baseURL: `${server.base}/v1`, apiKey: key })
  const answer = await generateText({ model: openai.chat('mock-gpt'), prompt: 'hello' })
  assert.equal(answer.text, FULL)
  let text = ''
  for await (const part of streamText({ model: openai.chat('mock-gpt'), prompt: 'hi' }).textStream) text += part
  assert.equal(text, STREAMED)
})

test('the AI SDK Anthropic provider (Messages API): text, stream, reasoning', async () => {
  const anthropic = createAnthropic({ baseURL: `${server.base}/v1`, apiKey: key })
  const answer = await generateText({ model: anthropic('mock-gpt'), prompt: 'hello' })
  assert.equal(answer.text, FULL)
  assert.equal(answer.usage.outputTokens, 8)
  let text = ''
  for await (const part of streamText({ model: anthropic('mock-gpt'), prompt: 'hi' }).textStream) text += part
  assert.equal(text, STREAMED)
  const thought = await generateText({ model: anthropic('mock-reasoner'), prompt: 'think' })
  assert.ok(thought.reasoningText && thought.reasoningText.length > 0, 'the reasoning came back as thinking')
  assert.ok(thought.text.startsWith('Hello'))
})
