import { afterEach, describe, expect, it, vi } from 'vitest'
import { configureHttp } from '@/api/http'
import { useChatStream, type StreamDone } from './useChatStream'

function streamOf(chunks: string[], { hang = false } = {}): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      if (!hang) controller.close()
    },
  })
}

function respond(body: ReadableStream<Uint8Array> | string | null, status = 200, headers: Record<string, string> = {}) {
  return new Response(body, { status, headers: { 'Content-Type': 'text/event-stream', ...headers } })
}

afterEach(() => vi.unstubAllGlobals())

describe('useChatStream', () => {
  it('parses events split anywhere across network reads, in order', async () => {
    const frames =
      'id: r1.1\nevent: message\ndata: {"id": 5, "role": "user", "content": "hi"}\n\n' +
      'id: r1.2\nevent: reasoning\ndata: {"content": "think"}\n\n' +
      'id: r1.3\nevent: delta\ndata: {"content": "Hel"}\n\n' +
      ': keep-alive\n\n' +
      'id: r1.4\r\nevent: delta\r\ndata: {"content": "lo 你好"}\r\n\r\n' +
      'id: r1.5\nevent: usage\ndata: {"total_tokens": 7}\n\n' +
      'id: r1.6\nevent: done\ndata: {"status": "complete", "message": {"id": 6}}\n\n'
    const pieces: string[] = []
    for (let i = 0; i < frames.length; i += 7) pieces.push(frames.slice(i, i + 7)) // split mid-line, mid-UTF-8 char text
    vi.stubGlobal('fetch', vi.fn(async () => respond(streamOf(pieces))))
    const seen: string[] = []
    let done: StreamDone | null = null
    const stream = useChatStream()
    const outcome = await stream.run(
      { path: '/api/conversations/1/messages', body: { content: 'hi' } },
      {
        message: (m) => seen.push(`message:${m.id}`),
        reasoning: (t) => seen.push(`reasoning:${t}`),
        delta: (t) => seen.push(`delta:${t}`),
        usage: (u) => seen.push(`usage:${u.total_tokens}`),
        done: (d) => (done = d),
      },
    )
    expect(outcome).toBe('done')
    expect(seen).toEqual(['message:5', 'reasoning:think', 'delta:Hel', 'delta:lo 你好', 'usage:7'])
    expect(done).toEqual({ status: 'complete', message: { id: 6 } })
    expect(stream.lastEventId.value).toBe('r1.6')
    expect(stream.streaming.value).toBe(false)
  })

  it('sends Last-Event-ID when resuming and reports 204 as nothing to attach to', async () => {
    const fetchMock = vi.fn(async () => respond(null, 204))
    vi.stubGlobal('fetch', fetchMock)
    const stream = useChatStream()
    const outcome = await stream.run({ path: '/api/conversations/1/stream', method: 'GET', lastEventId: 'r1.4' }, {})
    expect(outcome).toBe('nothing')
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect((init.headers as Record<string, string>)['Last-Event-ID']).toBe('r1.4')
    expect(init.method).toBe('GET')
  })

  it('abort() ends reading at once', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_path: string, init: RequestInit) => {
        const body = streamOf(['id: a.1\nevent: delta\ndata: {"content": "x"}\n\n'], { hang: true })
        init.signal?.addEventListener('abort', () => void body.cancel().catch(() => undefined))
        return respond(body)
      }),
    )
    const stream = useChatStream()
    const deltas: string[] = []
    const running = stream.run({ path: '/x', body: {} }, { delta: (t) => deltas.push(t) })
    await new Promise((r) => setTimeout(r, 20))
    expect(stream.streaming.value).toBe(true)
    stream.abort()
    expect(await running).toBe('aborted')
    expect(deltas).toEqual(['x'])
    expect(stream.streaming.value).toBe(false)
  })

  it('a refused request throws an ApiError with the server message and wait time', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(JSON.stringify({ detail: 'A reply is running', code: 'reply_running' }), { status: 409, headers: { 'Retry-After': '3' } })),
    )
    const stream = useChatStream()
    await expect(stream.run({ path: '/x', body: {} }, {})).rejects.toMatchObject({ status: 409, code: 'reply_running', message: 'A reply is running', retryAfter: 3 })
  })

  it('renews the session once on 401 and retries', async () => {
    let token = 'old'
    configureHttp({ token: () => token, refresh: async () => ((token = 'new'), true) })
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(new Response('{"detail": "expired"}', { status: 401 }))
      .mockResolvedValueOnce(respond(streamOf(['event: done\ndata: {"status": "complete", "message": null}\n\n'])))
    vi.stubGlobal('fetch', fetchMock)
    const outcome = await useChatStream().run({ path: '/x', body: {} }, {})
    expect(outcome).toBe('done')
    const second = (fetchMock.mock.calls[1] as [string, RequestInit])[1]
    expect((second.headers as Record<string, string>).Authorization).toBe('Bearer new')
  })

  it('a stream that ends without done is reported as closed', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => respond(streamOf(['event: delta\ndata: {"content": "part"}\n\n']))))
    expect(await useChatStream().run({ path: '/x', body: {} }, {})).toBe('closed')
  })
})
