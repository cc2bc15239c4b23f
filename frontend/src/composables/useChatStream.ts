// Reading the chat API's event streams: fetch + TextDecoderStream + eventsource-parser.
// One composable for sending, regenerating, editing and re-attaching; abort() ends reading
// (the reply itself goes on server-side unless stopped through the API).
import { createParser } from 'eventsource-parser'
import { getCurrentInstance, onUnmounted, ref } from 'vue'
import { ApiError, authHeader, fromBody, refreshSession, sessionExpired } from '@/api/http'
import type { Message, Schemas } from '@/api/types'

// What each event carries, as the OpenAPI document describes it (`ChatStreamEvent`).
export type StreamError = Schemas['ErrorData']
export type StreamUsage = Schemas['UsageData']
export type StreamDone = Schemas['DoneData']
export interface StreamHandlers {
  message?: (message: Message) => void
  delta?: (text: string) => void
  reasoning?: (text: string) => void
  usage?: (usage: StreamUsage) => void
  error?: (error: StreamError) => void
  done?: (done: StreamDone) => void
}
export type StreamOutcome = 'done' | 'closed' | 'aborted' | 'nothing'

/** Call the handler for one SSE event (unknown event names are ignored). */
export function dispatch(name: string | undefined, data: string, handlers: StreamHandlers): boolean {
  let payload: unknown
  try {
    payload = JSON.parse(data)
  } catch {
    return false
  }
  const content = (payload as { content?: string }).content ?? ''
  switch (name) {
    case 'message':
      handlers.message?.(payload as Message)
      return false
    case 'delta':
      handlers.delta?.(content)
      return false
    case 'reasoning':
      handlers.reasoning?.(content)
      return false
    case 'usage':
      handlers.usage?.(payload as StreamUsage)
      return false
    case 'error':
      handlers.error?.(payload as StreamError)
      return false
    case 'done':
      handlers.done?.(payload as StreamDone)
      return true
    default:
      return false
  }
}

export interface StreamRequest {
  path: string
  method?: 'GET' | 'POST'
  body?: unknown
  lastEventId?: string | null
}

export function useChatStream() {
  const streaming = ref(false)
  const lastEventId = ref<string | null>(null)
  let controller: AbortController | null = null
  let reading: ReadableStreamDefaultReader<string> | null = null

  async function open(request: StreamRequest, signal: AbortSignal, retried = false): Promise<Response | null> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeader() }
    if (request.body !== undefined) headers['Content-Type'] = 'application/json'
    if (request.lastEventId) headers['Last-Event-ID'] = request.lastEventId
    const response = await fetch(request.path, {
      method: request.method ?? 'POST',
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal,
    })
    if (response.status === 401 && !retried) {
      if (await refreshSession()) return open(request, signal, true)
      sessionExpired()
    }
    if (response.status === 204) return null
    if (!response.ok) {
      const retry = Number(response.headers.get('retry-after'))
      let body: unknown = null
      try {
        body = await response.json()
      } catch {
        body = null
      }
      throw fromBody(response.status, body, Number.isFinite(retry) && retry > 0 ? retry : null)
    }
    return response
  }

  /** Run one stream to its end. Throws ApiError when the request itself is refused. */
  async function run(request: StreamRequest, handlers: StreamHandlers): Promise<StreamOutcome> {
    abort()
    const own = new AbortController()
    controller = own
    streaming.value = true
    let finished = false
    try {
      const response = await open(request, own.signal)
      if (!response || !response.body) return 'nothing'
      const parser = createParser({
        onEvent(event) {
          if (event.id) lastEventId.value = event.id
          if (dispatch(event.event, event.data, handlers)) finished = true
        },
      })
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      reading = reader
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        parser.feed(value)
        if (finished) break
      }
      if (own.signal.aborted) return 'aborted'
      return finished ? 'done' : 'closed'
    } catch (error) {
      if (own.signal.aborted) return 'aborted'
      if (error instanceof ApiError) throw error
      throw new ApiError(error instanceof Error ? error.message : String(error), 0, 'network_error')
    } finally {
      if (controller === own) {
        controller = null
        streaming.value = false
      }
    }
  }

  function abort(): void {
    void reading?.cancel().catch(() => undefined) // ends a pending read even if fetch does not
    reading = null
    controller?.abort()
    controller = null
    streaming.value = false
  }

  if (getCurrentInstance()) onUnmounted(abort)
  return { streaming, lastEventId, run, abort }
}
