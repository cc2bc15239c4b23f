// Admin routers: channels, users, all API keys, conversations, IP rules, call logs, statistics.
import { del, get, patch, post, put } from './http'
import type { CallLog, Channel, ChannelCreate, ChannelUpdate, CursorPage, IPRule, LogTotals, MailConfig, Page, Schemas, User } from './types'

export const channelsApi = {
  list: (params: { page?: number; page_size?: number; q?: string; status?: string }) => get<Page<Channel>>('/api/admin/channels', params),
  create: (body: ChannelCreate) => post<Channel>('/api/admin/channels', body),
  update: (id: number, body: ChannelUpdate) => patch<Channel>(`/api/admin/channels/${id}`, body),
  remove: (id: number) => del(`/api/admin/channels/${id}`),
  enable: (id: number) => post<Channel>(`/api/admin/channels/${id}/enable`),
  disable: (id: number) => post<Channel>(`/api/admin/channels/${id}/disable`),
  test: (id: number, model?: string) => post<Schemas['ChannelTestResult']>(`/api/admin/channels/${id}/test`, model ? { model } : {}),
  fetchModels: (id: number) => post<Schemas['FetchModelsResult']>(`/api/admin/channels/${id}/fetch-models`, {}),
  fetchModelsFor: (body: Schemas['FetchModelsRequest']) => post<Schemas['FetchModelsResult']>('/api/admin/channels/fetch-models', body),
}

export const usersApi = {
  list: (params: { page?: number; page_size?: number; q?: string; role?: string; status?: string }) => get<Page<User>>('/api/admin/users', params),
  create: (body: Schemas['UserCreate']) => post<User>('/api/admin/users', body),
  update: (id: number, body: Schemas['UserUpdate']) => patch<User>(`/api/admin/users/${id}`, body),
  remove: (id: number) => del(`/api/admin/users/${id}`),
  resetPassword: (id: number, body: Schemas['PasswordResetByAdmin'] = { revoke_api_keys: false }) =>
    post<Schemas['PasswordResetResult']>(`/api/admin/users/${id}/password`, body),
  resetTwoFactor: (id: number) => del(`/api/admin/users/${id}/2fa`),
  signOut: (id: number, body: Schemas['SignOutEverywhere']) =>
    post<Schemas['SignedOut']>(`/api/admin/users/${id}/sign-out`, body),
}

export const mailApi = {
  get: () => get<MailConfig>('/api/admin/mail'),
  save: (body: Schemas['MailConfigUpdate']) => put<MailConfig>('/api/admin/mail', body),
  test: (to: string) => post<Schemas['TestMailResult']>('/api/admin/mail/test', { to }),
}

export const adminKeysApi = {
  list: (params: { page?: number; page_size?: number; q?: string; status?: string }) => get<Page<Schemas['AdminApiKeyRead']>>('/api/admin/keys', params),
  revoke: (id: number) => del(`/api/admin/keys/${id}`),
}

export const adminConversationsApi = {
  list: (params: { page?: number; page_size?: number; q?: string; user_id?: number }) =>
    get<Page<Schemas['AdminConversationRead']>>('/api/admin/conversations', params),
  get: (id: number) => get<Schemas['ConversationDetail']>(`/api/admin/conversations/${id}`),
  remove: (id: number) => del(`/api/admin/conversations/${id}`),
}

export const ipRulesApi = {
  list: (params: { page?: number; page_size?: number }) => get<Page<IPRule>>('/api/admin/ip-rules', params),
  create: (body: Schemas['IPRuleCreate']) => post<IPRule>('/api/admin/ip-rules', body),
  update: (id: number, body: Schemas['IPRuleUpdate']) => patch<IPRule>(`/api/admin/ip-rules/${id}`, body),
  remove: (id: number) => del(`/api/admin/ip-rules/${id}`),
  attempts: (params: { page?: number; page_size?: number; ip?: string; rule_id?: number }) =>
    get<Page<Schemas['BlockedAttemptRead']>>('/api/admin/ip-rules/attempts', params),
}

export const logsApi = {
  list: (params: Record<string, unknown>) => get<CursorPage<CallLog>>('/api/admin/logs', params),
  totals: (params: Record<string, unknown>) => get<LogTotals>('/api/admin/logs/totals', params),
  get: (id: number) => get<CallLog>(`/api/admin/logs/${id}`),
  exportPath: '/api/admin/logs/export',
}

export const statsApi = {
  overview: () => get<Schemas['Overview']>('/api/admin/stats/overview'),
  trend: (days: number) => get<Schemas['Trend']>('/api/admin/stats/trend', { days }),
  models: (days: number) => get<Schemas['ModelShares']>('/api/admin/stats/models', { days }),
  activeUsers: () => get<Schemas['ActiveUsers']>('/api/admin/stats/active-users'),
  topUsers: (days: number) => get<Schemas['TopList']>('/api/admin/stats/top-users', { days, limit: 10 }),
  topKeys: (days: number) => get<Schemas['TopList']>('/api/admin/stats/top-keys', { days, limit: 10 }),
  channels: (days: number) => get<Schemas['ChannelHealthList']>('/api/admin/stats/channels', { days }),
  blocked: (days: number) => get<Schemas['BlockedList']>('/api/admin/stats/blocked', { days, limit: 20 }),
}
