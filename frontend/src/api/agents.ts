import { client, unwrap } from './http'
import type { Schemas } from './types'

export const agentsApi = {
  list: () => unwrap(client.GET('/api/agents')),
  adminList: () => unwrap(client.GET('/api/admin/agents')),
  create: (body: Schemas['AgentCreate']) => unwrap(client.POST('/api/admin/agents', { body })),
  update: (id: number, body: Schemas['AgentUpdate']) =>
    unwrap(client.PATCH('/api/admin/agents/{agent_id}', { params: { path: { agent_id: id } }, body })),
  remove: (id: number) => unwrap(client.DELETE('/api/admin/agents/{agent_id}', { params: { path: { agent_id: id } } })),
}

/** A user's own private agents (when the site allows them: `user_agents_enabled`). */
export const myAgentsApi = {
  create: (body: Schemas['PrivateAgentCreate']) => unwrap(client.POST('/api/agents', { body })),
  update: (id: number, body: Schemas['PrivateAgentUpdate']) =>
    unwrap(client.PATCH('/api/agents/{agent_id}', { params: { path: { agent_id: id } }, body })),
  remove: (id: number) => unwrap(client.DELETE('/api/agents/{agent_id}', { params: { path: { agent_id: id } } })),
}
