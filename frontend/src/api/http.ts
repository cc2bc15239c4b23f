// The one HTTP client, typed from the backend's OpenAPI document: bearer token, one automatic
// refresh on 401, errors as ApiError. It knows nothing of stores or toasts: main.ts registers the
// token source and the 401 hook.
import createClient from 'openapi-fetch'
import type { paths } from './schema'

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

const TIMEOUT_MS = 60_000
/** A request header (never sent) asking not to renew the session on 401 (sign-in, refresh). */
export const NO_REFRESH = { 'X-No-Session-Refresh': '1' }
const NO_REFRESH_HEADER = 'X-No-Session-Refresh'

function prepared(request: Request, signal: AbortSignal): Request {
  const headers = new Headers(request.headers)
  headers.delete(NO_REFRESH_HEADER)
  const token = hooks.token()
  if (token && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${token}`)
  headers.set('Accept-Language', hooks.language())
  return new Request(request, { headers, signal })
}

/** The fetch every API call goes through: the bearer token and the UI language on each request,
 *  one renewal of the session and one retry on 401, a 60 s limit. */
export async function apiFetch(request: Request): Promise<Response> {
  const skipRefresh = request.headers.has(NO_REFRESH_HEADER)
  const again = request.clone() // a body can be read once
  const signal = AbortSignal.any([request.signal, AbortSignal.timeout(TIMEOUT_MS)])
  const response = await fetch(prepared(request, signal))
  if (response.status !== 401 || skipRefresh) return response
  if (await hooks.refresh()) return fetch(prepared(again, signal))
  hooks.unauthorized()
  return response
}

/** The typed client: paths, parameters, bodies and answers are checked against the backend's
 *  OpenAPI document (`schema.d.ts`, `npm run gen:api`). Use it through `unwrap`. */
export const client = createClient<paths>({ fetch: apiFetch })

interface Answer<D> {
  data?: D
  error?: unknown
  response: Response
}

/** The answer's data, or an ApiError for an error answer or a failed request. */
export async function unwrap<D>(pending: Promise<Answer<D>>): Promise<D> {
  let answer: Answer<D>
  try {
    answer = await pending
  } catch (error) {
    throw toApiError(error)
  }
  const { data, error, response } = answer
  if (!response.ok) {
    const header = response.headers.get('retry-after')
    const retry = header === null ? NaN : Number(header)
    throw fromBody(response.status, error, Number.isFinite(retry) ? retry : null)
  }
  return data as D
}

/** An ApiError from anything a request threw: a network failure, a timeout, an ApiError. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return new ApiError('The server took too long to answer', 0, 'timeout')
  }
  if (error instanceof TypeError) return new ApiError(error.message || 'Network error', 0, 'network_error')
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
