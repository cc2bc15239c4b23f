// The web chat API. Replies are event streams: see composables/useChatStream.ts.
import { client, unwrap } from './http'
import type { Query } from './query'
import type { Schemas } from './types'

const base = '/api/conversations'
const path = (id: number) => ({ params: { path: { conversation_id: id } } })

export const conversationsApi = {
  list: (query: Query<'/api/conversations'>) => unwrap(client.GET('/api/conversations', { params: { query } })),
  create: (body: Schemas['ConversationCreate']) => unwrap(client.POST('/api/conversations', { body })),
  get: (id: number) => unwrap(client.GET('/api/conversations/{conversation_id}', path(id))),
  messages: (id: number, before: number) =>
    unwrap(
      client.GET('/api/conversations/{conversation_id}/messages', {
        params: { path: { conversation_id: id }, query: { before, limit: 50 } },
      }),
    ),
  update: (id: number, body: Schemas['ConversationUpdate']) =>
    unwrap(client.PATCH('/api/conversations/{conversation_id}', { ...path(id), body })),
  updateContext: (id: number, body: Schemas['ContextUpdate']) =>
    unwrap(client.PUT('/api/conversations/{conversation_id}/context', { ...path(id), body })),
  remove: (id: number) => unwrap(client.DELETE('/api/conversations/{conversation_id}', path(id))),
  stop: (id: number) => unwrap(client.POST('/api/conversations/{conversation_id}/stop', path(id))),
  importJson: (body: Schemas['ConversationExport']) => unwrap(client.POST('/api/conversations/import', { body })),
  models: () => unwrap(client.GET('/api/chat/models')),
  // Paths for the streaming calls and downloads (fetch / links).
  sendPath: (id: number) => `${base}/${id}/messages`,
  regeneratePath: (id: number) => `${base}/${id}/regenerate`,
  editPath: (id: number, messageId: number) => `${base}/${id}/messages/${messageId}/edit`,
  streamPath: (id: number) => `${base}/${id}/stream`,
  exportPath: (id: number, format: 'markdown' | 'json') => `${base}/${id}/export?format=${format}`,
}
