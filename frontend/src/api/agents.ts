import { del, get, patch, post } from './http'
import type { Agent, Page, Schemas } from './types'

export const agentsApi = {
  list: () => get<Page<Agent>>('/api/agents'),
  adminList: () => get<Page<Agent>>('/api/admin/agents'),
  create: (body: Schemas['AgentCreate']) => post<Agent>('/api/admin/agents', body),
  update: (id: number, body: Schemas['AgentUpdate']) => patch<Agent>(`/api/admin/agents/${id}`, body),
  remove: (id: number) => del(`/api/admin/agents/${id}`),
}
