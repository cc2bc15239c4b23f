import { client, unwrap } from './http'
import type { Query } from './query'
import type { Schemas } from './types'

export const keysApi = {
  list: (query: Query<'/api/keys'> = {}) => unwrap(client.GET('/api/keys', { params: { query } })),
  create: (body: Schemas['ApiKeyCreate']) => unwrap(client.POST('/api/keys', { body })),
  revoke: (id: number) => unwrap(client.DELETE('/api/keys/{key_id}', { params: { path: { key_id: id } } })),
}
