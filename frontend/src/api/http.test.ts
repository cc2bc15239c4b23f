import { afterEach, describe, expect, it, vi } from 'vitest'
import { authApi } from './auth'
import { ApiError, client, configureHttp, fromBody, toApiError, unwrap } from './http'

afterEach(() => configureHttp({ token: () => null, language: () => 'en', refresh: async () => false, unauthorized: () => {} }))

describe('errors from the API', () => {
  it('reads the SPA API shape with its code', () => {
    const error = fromBody(409, { detail: 'Conflict here', code: 'reply_running' })
    expect(error).toBeInstanceOf(ApiError)
    expect([error.status, error.code, error.message]).toEqual([409, 'reply_running', 'Conflict here'])
  })

  it('turns validation errors into per-field messages', () => {
    const error = fromBody(422, {
      detail: [{ loc: ['body', 'params', 'temperature'], msg: 'Input should be less than or equal to 2' }],
      code: 'validation_error',
    })
    expect(error.fieldMessage('params.temperature')).toBe('Input should be less than or equal to 2')
    expect(error.message).toBe('params.temperature: Input should be less than or equal to 2')
  })

  it('reads the OpenAI envelope and the wait time', () => {
    const error = fromBody(429, { error: { message: 'Slow down', code: 'user_rate_limited' } }, 12)
    expect([error.code, error.message, error.retryAfter]).toEqual(['user_rate_limited', 'Slow down', 12])
  })

  it('names a network failure as such', () => {
    expect(toApiError(new Error('boom')).status).toBe(0)
  })
})

describe('the HTTP client', () => {
  afterEach(() => vi.unstubAllGlobals())

  function serve(answer: (request: Request) => Response): Request[] {
    const seen: Request[] = []
    vi.stubGlobal('fetch', async (request: Request) => {
      seen.push(request)
      return answer(request)
    })
    return seen
  }

  it('renews the token once on 401, retries, and reports the failure only if that fails too', async () => {
    let token = 'old'
    let refreshes = 0
    let expired = 0
    configureHttp({
      token: () => token,
      refresh: async () => {
        refreshes++
        token = 'new'
        return true
      },
      unauthorized: () => expired++,
    })
    const seen = serve((request) =>
      request.headers.get('Authorization') === 'Bearer old'
        ? Response.json({ detail: 'Invalid or expired token', code: 'invalid_token' }, { status: 401 })
        : Response.json({ enabled: true, recovery_codes_left: 3 }),
    )
    const result = await unwrap(client.GET('/api/auth/2fa'))
    expect(result).toEqual({ enabled: true, recovery_codes_left: 3 })
    expect(seen.map((r) => r.headers.get('Authorization'))).toEqual(['Bearer old', 'Bearer new'])
    expect([refreshes, expired]).toEqual([1, 0])
  })

  it('says the session ended when renewing fails, and answers the 401 as an ApiError', async () => {
    let expired = 0
    configureHttp({ token: () => 't', refresh: async () => false, unauthorized: () => expired++ })
    serve(() => Response.json({ detail: 'Invalid or expired token', code: 'invalid_token' }, { status: 401 }))
    const error = await unwrap(client.GET('/api/auth/me')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect([(error as ApiError).status, (error as ApiError).code, expired]).toEqual([401, 'invalid_token', 1])
  })

  it('never renews for sign-in (a wrong password is a 401 of its own), and never sends the marker', async () => {
    let refreshes = 0
    configureHttp({ refresh: async () => (refreshes++, true) })
    const seen = serve(() => Response.json({ detail: 'Wrong username or password', code: 'invalid_credentials' }, { status: 401 }))
    const error = (await authApi.login('ann', 'wrong').catch((e: unknown) => e)) as ApiError
    expect([error.status, error.code, refreshes, seen.length]).toEqual([401, 'invalid_credentials', 0, 1])
    expect([...seen[0]!.headers.keys()].some((k) => k.toLowerCase().startsWith('x-no-'))).toBe(false)
    expect(await seen[0]!.json()).toEqual({ username: 'ann', password: 'wrong' })
  })

  it('signs out with the token it is given, after the store has forgotten it', async () => {
    configureHttp({ token: () => null })
    const seen = serve(() => new Response(null, { status: 204 }))
    await authApi.logout('a1')
    expect([seen[0]!.method, new URL(seen[0]!.url).pathname, seen[0]!.headers.get('Authorization')]).toEqual([
      'POST',
      '/api/auth/logout',
      'Bearer a1',
    ])
  })

  it('sends the UI language, so mails from the server are written in it', async () => {
    configureHttp({ language: () => 'zh-CN' })
    const seen = serve(() => Response.json({ enabled: false, recovery_codes_left: 0 }))
    await unwrap(client.GET('/api/auth/2fa'))
    expect(seen[0]!.headers.get('Accept-Language')).toBe('zh-CN')
  })

  it('puts path and query parameters where the route has them', async () => {
    const seen = serve(() => Response.json({ items: [], next_cursor: null }))
    await unwrap(client.GET('/api/admin/logs', { params: { query: { limit: 50, model: 'gpt 4o' } } }))
    await unwrap(client.DELETE('/api/admin/channels/{channel_id}', { params: { path: { channel_id: 7 } } }))
    expect(seen.map((r) => `${r.method} ${new URL(r.url).pathname}${new URL(r.url).search}`)).toEqual([
      'GET /api/admin/logs?limit=50&model=gpt%204o',
      'DELETE /api/admin/channels/7',
    ])
  })

  it('reads the wait time of a 429 and names a failed connection', async () => {
    serve(() => Response.json({ detail: 'Too many', code: 'user_rate_limited' }, { status: 429, headers: { 'Retry-After': '7' } }))
    const limited = (await unwrap(client.GET('/api/auth/me')).catch((e: unknown) => e)) as ApiError
    expect([limited.status, limited.retryAfter]).toEqual([429, 7])
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch')
    })
    const offline = (await unwrap(client.GET('/api/auth/me')).catch((e: unknown) => e)) as ApiError
    expect([offline.status, offline.code]).toEqual([0, 'network_error'])
  })
})
