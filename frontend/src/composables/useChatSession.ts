// One open conversation: its messages, the reply being generated (the draft), and the actions
// that start, stop and re-attach to replies. The view renders this; the stream is useChatStream.
import { computed, ref } from 'vue'
import { conversationsApi } from '@/api/conversations'
import { ApiError, toApiError } from '@/api/http'
import type { ConversationDetail, Message } from '@/api/types'
import { useChatStream, type StreamError, type StreamHandlers, type StreamRequest, type StreamUsage } from './useChatStream'

export interface Draft {
  content: string
  reasoning: string
  startedAt: number
  reasoningStartedAt: number | null
  reasoningEndedAt: number | null
  stopping: boolean
}

/** A stored message, plus what the client learnt while it streamed. */
export type ShownMessage = Message & { retryAfter?: number | null; usageSeen?: StreamUsage }

export function useChatSession(onFinished: (message: Message | null) => void = () => {}) {
  const detail = ref<ConversationDetail | null>(null)
  const messages = ref<ShownMessage[]>([])
  const olderCursor = ref<number | null>(null)
  const draft = ref<Draft | null>(null)
  const failure = ref<ApiError | null>(null) // a refused request (shown as a dialog)
  const stream = useChatStream()
  const busy = computed(() => draft.value !== null)
  let pendingError: StreamError | null = null

  async function load(id: number): Promise<void> {
    detail.value = await conversationsApi.get(id)
    messages.value = [...detail.value.messages]
    olderCursor.value = detail.value.messages_cursor
    if (detail.value.running_reply) void attach()
  }

  async function loadOlder(): Promise<void> {
    if (!detail.value || olderCursor.value === null) return
    const page = await conversationsApi.messages(detail.value.id, olderCursor.value)
    messages.value = [...page.items, ...messages.value]
    olderCursor.value = page.next_cursor
  }

  function handlers(): StreamHandlers {
    return {
      message(message) {
        if (!messages.value.some((m) => m.id === message.id)) messages.value.push(message)
      },
      reasoning(text) {
        if (!draft.value) return
        draft.value.reasoningStartedAt ??= Date.now()
        draft.value.reasoning += text
      },
      delta(text) {
        if (!draft.value) return
        if (draft.value.reasoningStartedAt && !draft.value.reasoningEndedAt) draft.value.reasoningEndedAt = Date.now()
        draft.value.content += text
      },
      error(error) {
        pendingError = error
      },
      done(done) {
        const stored = done.message
        if (stored) {
          const shown: ShownMessage = { ...stored, retryAfter: pendingError?.retry_after ?? null }
          messages.value = [...messages.value.filter((m) => m.id !== stored.id), shown]
        } else if (draft.value) {
          // The reply could not be stored (or its server went away): keep what was seen.
          messages.value.push(localFailure(draft.value, pendingError))
        }
        if (detail.value && stored) {
          detail.value.total_tokens += stored.total_tokens
          detail.value.message_count = messages.value.length
        }
        pendingError = null
        draft.value = null
        onFinished(stored)
      },
    }
  }

  function localFailure(seen: Draft, error: StreamError | null): ShownMessage {
    return {
      id: -Date.now(),
      conversation_id: detail.value?.id ?? 0,
      role: 'assistant',
      content: seen.content,
      reasoning: seen.reasoning || null,
      status: 'error',
      error: error?.message ?? null,
      error_code: error?.code ?? null,
      model: null,
      prompt_tokens: 0,
      completion_tokens: 0,
      reasoning_tokens: 0,
      total_tokens: 0,
      usage_source: null,
      ttft_ms: null,
      reasoning_ms: null,
      duration_ms: null,
      created_at: new Date().toISOString(),
      retryAfter: error?.retry_after ?? null,
    }
  }

  function newDraft(): Draft {
    return { content: '', reasoning: '', startedAt: Date.now(), reasoningStartedAt: null, reasoningEndedAt: null, stopping: false }
  }

  async function runReply(request: StreamRequest): Promise<boolean> {
    failure.value = null
    pendingError = null
    draft.value = newDraft()
    try {
      const outcome = await stream.run(request, handlers())
      if (outcome === 'closed' && draft.value) {
        // The connection broke before `done`: the reply goes on server-side; follow it again.
        return attach()
      }
      if (outcome !== 'done') draft.value = null
      return true
    } catch (error) {
      draft.value = null
      failure.value = toApiError(error)
      return false
    }
  }

  function send(content: string, model?: string | null): Promise<boolean> {
    if (!detail.value) return Promise.resolve(false)
    return runReply({ path: conversationsApi.sendPath(detail.value.id), body: { content, model: model || undefined } })
  }

  async function regenerate(model?: string | null): Promise<boolean> {
    if (!detail.value) return false
    const last = messages.value[messages.value.length - 1]
    const replaced = last?.role === 'assistant' ? last : null
    if (replaced) messages.value = messages.value.slice(0, -1)
    const ok = await runReply({ path: conversationsApi.regeneratePath(detail.value.id), body: { model: model || undefined } })
    if (!ok && replaced) messages.value.push(replaced)
    return ok
  }

  async function edit(message: Message, content: string, model?: string | null): Promise<boolean> {
    if (!detail.value) return false
    const index = messages.value.findIndex((m) => m.id === message.id)
    const before = messages.value
    messages.value = messages.value.slice(0, index)
    const ok = await runReply({ path: conversationsApi.editPath(detail.value.id, message.id), body: { content, model: model || undefined } })
    if (!ok) messages.value = before
    return ok
  }

  /** Re-attach to the conversation's reply (after a reload): every event from its start. */
  async function attach(): Promise<boolean> {
    if (!detail.value) return false
    draft.value = newDraft()
    try {
      const outcome = await stream.run({ path: conversationsApi.streamPath(detail.value.id), method: 'GET' }, handlers())
      if (outcome !== 'done') draft.value = null
      return true
    } catch (error) {
      draft.value = null
      failure.value = toApiError(error)
      return false
    }
  }

  async function stop(): Promise<void> {
    if (!detail.value || !draft.value || draft.value.stopping) return
    draft.value.stopping = true
    try {
      await conversationsApi.stop(detail.value.id) // the stream then ends with `done` (stopped)
    } catch (error) {
      failure.value = toApiError(error)
    }
  }

  return { detail, messages, olderCursor, draft, busy, failure, load, loadOlder, send, regenerate, edit, attach, stop, abort: stream.abort }
}
