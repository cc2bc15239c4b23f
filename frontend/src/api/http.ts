// The one HTTP client: bearer token, one automatic refresh on 401, errors as ApiError.
// It knows nothing of stores or toasts: main.ts registers the token source and the 401 hook.
import axios, { AxiosError, type AxiosRequestConfig } from 'axios'

export interface FieldError {
  field: string
  message: string
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    readonly fields: FieldError[] = [],
    readonly retryAfter: number | null = null,
  ) {
    super(message)
  }

  fieldMessage(field: string): string | undefined {
    return this.fields.find((f) => f.field === field)?.message
  }
}

interface Hooks {
  token: () => string | null
  /** The UI language, sent as Accept-Language (mails the server sends are written in it). */
  language: () => string
  refresh: () => Promise<boolean>
  unauthorized: () => void
}

const hooks: Hooks = { token: () => null, language: () => 'en', refresh: async () => false, unauthorized: () => {} }

export function configureHttp(next: Partial<Hooks>): void {
  Object.assign(hooks, next)
}

/** Renew the access token once (for requests made with fetch, e.g. event streams). */
export function refreshSession(): Promise<boolean> {
  return hooks.refresh()
}

export function sessionExpired(): void {
  hooks.unauthorized()
}

export function authHeader(): Record<string, string> {
  const token = hooks.token()
  return token ? { Authorization: `Bearer ${token}` } : {}
}

export const http = axios.create({ timeout: 60_000 })

http.interceptors.request.use((config) => {
  const token = hooks.token()
  if (token && !config.headers.has('Authorization')) config.headers.set('Authorization', `Bearer ${token}`)
  config.headers.set('Accept-Language', hooks.language())
  return config
})

type Retriable = AxiosRequestConfig & { _retried?: boolean; _noRefresh?: boolean }

http.interceptors.response.use(undefined, async (error: AxiosError) => {
  const config = error.config as Retriable | undefined
  if (error.response?.status === 401 && config && !config._retried && !config._noRefresh) {
    config._retried = true
    if (await hooks.refresh()) {
      config.headers = { ...(config.headers ?? {}), Authorization: `Bearer ${hooks.token()}` }
      return http.request(config)
    }
    hooks.unauthorized()
  }
  throw toApiError(error)
})

/** An ApiError from anything thrown by axios or fetch (the server's `{detail, code}`). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (error instanceof AxiosError) {
    if (!error.response) return new ApiError(error.message || 'Network error', 0, 'network_error')
    const { status, data, headers } = error.response
    const retry = Number(headers?.['retry-after'])
    return fromBody(status, data, Number.isFinite(retry) ? retry : null)
  }
  return new ApiError(error instanceof Error ? error.message : String(error), 0)
}

export function fromBody(status: number, data: unknown, retryAfter: number | null = null): ApiError {
  const body = (data ?? {}) as { detail?: unknown; code?: string; error?: { message?: string; code?: string } }
  if (body.error?.message) return new ApiError(body.error.message, status, body.error.code ?? null, [], retryAfter)
  const detail = body.detail
  if (Array.isArray(detail)) {
    const fields = detail.map((d: { loc?: unknown[]; msg?: string }) => ({
      field: (d.loc ?? []).filter((p) => p !== 'body' && p !== 'query').join('.'),
      message: d.msg ?? 'Invalid value',
    }))
    const first = fields[0]
    const message = first ? (first.field ? `${first.field}: ${first.message}` : first.message) : 'Invalid request'
    return new ApiError(message, status, body.code ?? 'validation_error', fields, retryAfter)
  }
  return new ApiError(typeof detail === 'string' ? detail : `Request failed (${status})`, status, body.code ?? null, [], retryAfter)
}

export async function get<T>(url: string, params?: object): Promise<T> {
  return (await http.get<T>(url, { params })).data
}
export async function post<T>(url: string, body?: unknown, config?: Retriable): Promise<T> {
  return (await http.post<T>(url, body, config)).data
}
export async function patch<T>(url: string, body?: unknown): Promise<T> {
  return (await http.patch<T>(url, body)).data
}
export async function put<T>(url: string, body?: unknown): Promise<T> {
  return (await http.put<T>(url, body)).data
}
export async function del(url: string): Promise<void> {
  await http.delete(url)
}
