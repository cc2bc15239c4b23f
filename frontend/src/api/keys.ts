import { del, get, post } from './http'
import type { ApiKey, ApiKeyCreated, Page, Schemas } from './types'

export const keysApi = {
  list: (params: { page?: number; page_size?: number; include_revoked?: boolean } = {}) =>
    get<Page<ApiKey>>('/api/keys', params),
  create: (body: Schemas['ApiKeyCreate']) => post<ApiKeyCreated>('/api/keys', body),
  revoke: (id: number) => del(`/api/keys/${id}`),
}
