import { client, unwrap } from './http'
import type { Query } from './query'

export const usageApi = {
  list: (query: Query<'/api/usage'>) => unwrap(client.GET('/api/usage', { params: { query } })),
  totals: (query: Query<'/api/usage/totals'>) => unwrap(client.GET('/api/usage/totals', { params: { query } })),
  daily: (days: number) => unwrap(client.GET('/api/usage/daily', { params: { query: { days } } })),
}

export const spendingApi = {
  mine: () => unwrap(client.GET('/api/spending')),
  balance: () => unwrap(client.GET('/api/spending/balance', { params: { query: { page_size: 20 } } })),
  redeem: (code: string) => unwrap(client.POST('/api/spending/redeem', { body: { code } })),
}
