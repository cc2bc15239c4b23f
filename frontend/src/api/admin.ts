// Admin routers: channels, users, all API keys, conversations, IP rules, call logs, statistics.
import { client, unwrap } from './http'
import type { Query } from './query'
import type { Schemas } from './types'

export const channelsApi = {
  list: (query: Query<'/api/admin/channels'>) => unwrap(client.GET('/api/admin/channels', { params: { query } })),
  create: (body: Schemas['ChannelCreate']) => unwrap(client.POST('/api/admin/channels', { body })),
  update: (id: number, body: Schemas['ChannelUpdate']) =>
    unwrap(client.PATCH('/api/admin/channels/{channel_id}', { params: { path: { channel_id: id } }, body })),
  remove: (id: number) => unwrap(client.DELETE('/api/admin/channels/{channel_id}', { params: { path: { channel_id: id } } })),
  enable: (id: number) => unwrap(client.POST('/api/admin/channels/{channel_id}/enable', { params: { path: { channel_id: id } } })),
  disable: (id: number) => unwrap(client.POST('/api/admin/channels/{channel_id}/disable', { params: { path: { channel_id: id } } })),
  test: (id: number, model?: string) =>
    unwrap(client.POST('/api/admin/channels/{channel_id}/test', { params: { path: { channel_id: id } }, body: model ? { model } : {} })),
  fetchModels: (id: number) =>
    unwrap(client.POST('/api/admin/channels/{channel_id}/fetch-models', { params: { path: { channel_id: id } } })),
  fetchModelsFor: (body: Schemas['FetchModelsRequest']) => unwrap(client.POST('/api/admin/channels/fetch-models', { body })),
}

export const usersApi = {
  list: (query: Query<'/api/admin/users'>) => unwrap(client.GET('/api/admin/users', { params: { query } })),
  create: (body: Schemas['UserCreate']) => unwrap(client.POST('/api/admin/users', { body })),
  update: (id: number, body: Schemas['UserUpdate']) =>
    unwrap(client.PATCH('/api/admin/users/{user_id}', { params: { path: { user_id: id } }, body })),
  remove: (id: number) => unwrap(client.DELETE('/api/admin/users/{user_id}', { params: { path: { user_id: id } } })),
  resetPassword: (id: number, body: Schemas['PasswordResetByAdmin'] = { revoke_api_keys: false }) =>
    unwrap(client.POST('/api/admin/users/{user_id}/password', { params: { path: { user_id: id } }, body })),
  resetTwoFactor: (id: number) => unwrap(client.DELETE('/api/admin/users/{user_id}/2fa', { params: { path: { user_id: id } } })),
  signOut: (id: number, body: Schemas['SignOutEverywhere']) =>
    unwrap(client.POST('/api/admin/users/{user_id}/sign-out', { params: { path: { user_id: id } }, body })),
}

export const mailApi = {
  get: () => unwrap(client.GET('/api/admin/mail')),
  save: (body: Schemas['MailConfigUpdate']) => unwrap(client.PUT('/api/admin/mail', { body })),
  test: (to: string) => unwrap(client.POST('/api/admin/mail/test', { body: { to } })),
}

export const adminKeysApi = {
  list: (query: Query<'/api/admin/keys'>) => unwrap(client.GET('/api/admin/keys', { params: { query } })),
  revoke: (id: number) => unwrap(client.DELETE('/api/admin/keys/{key_id}', { params: { path: { key_id: id } } })),
}

export const adminConversationsApi = {
  list: (query: Query<'/api/admin/conversations'>) => unwrap(client.GET('/api/admin/conversations', { params: { query } })),
  get: (id: number) =>
    unwrap(client.GET('/api/admin/conversations/{conversation_id}', { params: { path: { conversation_id: id } } })),
  remove: (id: number) =>
    unwrap(client.DELETE('/api/admin/conversations/{conversation_id}', { params: { path: { conversation_id: id } } })),
}

export const ipRulesApi = {
  list: (query: Query<'/api/admin/ip-rules'>) => unwrap(client.GET('/api/admin/ip-rules', { params: { query } })),
  create: (body: Schemas['IPRuleCreate']) => unwrap(client.POST('/api/admin/ip-rules', { body })),
  update: (id: number, body: Schemas['IPRuleUpdate']) =>
    unwrap(client.PATCH('/api/admin/ip-rules/{rule_id}', { params: { path: { rule_id: id } }, body })),
  remove: (id: number) => unwrap(client.DELETE('/api/admin/ip-rules/{rule_id}', { params: { path: { rule_id: id } } })),
  attempts: (query: Query<'/api/admin/ip-rules/attempts'>) =>
    unwrap(client.GET('/api/admin/ip-rules/attempts', { params: { query } })),
}

export const logsApi = {
  list: (query: Query<'/api/admin/logs'>) => unwrap(client.GET('/api/admin/logs', { params: { query } })),
  totals: (query: Query<'/api/admin/logs/totals'>) => unwrap(client.GET('/api/admin/logs/totals', { params: { query } })),
  get: (id: number) => unwrap(client.GET('/api/admin/logs/{log_id}', { params: { path: { log_id: id } } })),
  exportPath: '/api/admin/logs/export',
}

export const statsApi = {
  overview: () => unwrap(client.GET('/api/admin/stats/overview')),
  trend: (days: number) => unwrap(client.GET('/api/admin/stats/trend', { params: { query: { days } } })),
  models: (days: number) => unwrap(client.GET('/api/admin/stats/models', { params: { query: { days } } })),
  activeUsers: () => unwrap(client.GET('/api/admin/stats/active-users')),
  topUsers: (days: number, by: 'calls' | 'cost' = 'calls') =>
    unwrap(client.GET('/api/admin/stats/top-users', { params: { query: { days, limit: 10, by } } })),
  topKeys: (days: number) => unwrap(client.GET('/api/admin/stats/top-keys', { params: { query: { days, limit: 10 } } })),
  channels: (days: number) => unwrap(client.GET('/api/admin/stats/channels', { params: { query: { days } } })),
  blocked: (days: number) => unwrap(client.GET('/api/admin/stats/blocked', { params: { query: { days, limit: 20 } } })),
}

export const pricesApi = {
  list: () => unwrap(client.GET('/api/admin/prices')),
  create: (body: Schemas['PriceCreate']) => unwrap(client.POST('/api/admin/prices', { body })),
  remove: (id: number) => unwrap(client.DELETE('/api/admin/prices/{price_id}', { params: { path: { price_id: id } } })),
  exportFile: () => unwrap(client.GET('/api/admin/prices/export')),
  importFile: (data: Record<string, unknown>, onlyServed = true) =>
    unwrap(client.POST('/api/admin/prices/import', { params: { query: { only_served: onlyServed } }, body: data })),
}

export const balancesApi = {
  history: (userId: number) =>
    unwrap(client.GET('/api/admin/users/{user_id}/balance', { params: { path: { user_id: userId }, query: { page_size: 20 } } })),
  change: (userId: number, body: Schemas['BalanceChange']) =>
    unwrap(client.POST('/api/admin/users/{user_id}/balance', { params: { path: { user_id: userId } }, body })),
  spending: (userId: number) =>
    unwrap(client.GET('/api/admin/users/{user_id}/spending', { params: { path: { user_id: userId } } })),
}

export const codesApi = {
  list: (query: Query<'/api/admin/codes'>) => unwrap(client.GET('/api/admin/codes', { params: { query } })),
  create: (body: Schemas['CodesCreate']) => unwrap(client.POST('/api/admin/codes', { body })),
  disable: (id: number) => unwrap(client.DELETE('/api/admin/codes/{code_id}', { params: { path: { code_id: id } } })),
}
