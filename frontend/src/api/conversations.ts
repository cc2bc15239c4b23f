// The web chat API. Replies are event streams: see composables/useChatStream.ts.
import { del, get, patch, post, put } from './http'
import type { ConversationDetail, ConversationRead, ConversationSummary, Page, Schemas } from './types'

const base = '/api/conversations'

export const conversationsApi = {
  list: (params: { page?: number; page_size?: number; q?: string; archived?: boolean }) =>
    get<Page<ConversationSummary>>(base, params),
  create: (body: Schemas['ConversationCreate']) => post<ConversationRead>(base, body),
  get: (id: number) => get<ConversationDetail>(`${base}/${id}`),
  messages: (id: number, before: number) => get<Schemas['MessagePage']>(`${base}/${id}/messages`, { before, limit: 50 }),
  update: (id: number, body: Schemas['ConversationUpdate']) => patch<ConversationRead>(`${base}/${id}`, body),
  updateContext: (id: number, body: Schemas['ContextUpdate']) => put<ConversationRead>(`${base}/${id}/context`, body),
  remove: (id: number) => del(`${base}/${id}`),
  stop: (id: number) => post<Schemas['StopResult']>(`${base}/${id}/stop`),
  importJson: (body: unknown) => post<ConversationRead>(`${base}/import`, body),
  models: () => get<Schemas['ChatModels']>('/api/chat/models'),
  // Paths for the streaming calls and downloads (fetch / links, not axios).
  sendPath: (id: number) => `${base}/${id}/messages`,
  regeneratePath: (id: number) => `${base}/${id}/regenerate`,
  editPath: (id: number, messageId: number) => `${base}/${id}/messages/${messageId}/edit`,
  streamPath: (id: number) => `${base}/${id}/stream`,
  exportPath: (id: number, format: 'markdown' | 'json') => `${base}/${id}/export?format=${format}`,
}
