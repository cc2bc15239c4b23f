import { afterEach, describe, expect, it } from 'vitest'
import { ApiError, configureHttp, fromBody, http, toApiError } from './http'

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
    const seen: string[] = []
    const result = await http.get('/api/thing', {
      adapter: async (config) => {
        const auth = String(config.headers.Authorization)
        seen.push(auth)
        if (auth === 'Bearer old') {
          const error = Object.assign(new Error('401'), { isAxiosError: true, config, response: { status: 401, data: {}, headers: {}, config } })
          throw error
        }
        return { data: { ok: true }, status: 200, statusText: 'OK', headers: {}, config }
      },
    })
    expect(result.data).toEqual({ ok: true })
    expect(seen).toEqual(['Bearer old', 'Bearer new'])
    expect([refreshes, expired]).toEqual([1, 0])
  })

  it('sends the UI language, so mails from the server are written in it', async () => {
    configureHttp({ language: () => 'zh-CN' })
    let sent = ''
    await http.get('/api/thing', {
      adapter: async (config) => {
        sent = String(config.headers['Accept-Language'])
        return { data: {}, status: 200, statusText: 'OK', headers: {}, config }
      },
    })
    expect(sent).toBe('zh-CN')
  })
})
