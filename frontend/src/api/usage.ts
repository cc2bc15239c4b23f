import { get } from './http'
import type { CursorPage, LogTotals, Schemas, UsageRecord } from './types'

export const usageApi = {
  list: (params: Record<string, unknown>) => get<CursorPage<UsageRecord>>('/api/usage', params),
  totals: (params: Record<string, unknown>) => get<LogTotals>('/api/usage/totals', params),
  daily: (days: number) => get<Schemas['Trend']>('/api/usage/daily', { days }),
}
