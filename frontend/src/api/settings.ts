import { del, get, put } from './http'
import type { Page, Schemas } from './types'

export interface PublicSettings {
  site_name: string
  announcement: string
  registration_enabled: boolean
  default_model: string
}

export const settingsApi = {
  public: () => get<PublicSettings>('/api/settings/public'),
  all: () => get<Record<string, unknown>>('/api/admin/settings'),
  schema: () => get<Schemas['SettingsSchema']>('/api/admin/settings/schema'),
  save: (values: Record<string, unknown>) => put<Record<string, unknown>>('/api/admin/settings', values),
  reset: (key: string) => del(`/api/admin/settings/${key}`),
  history: (params: { page?: number; key?: string }) => get<Page<Schemas['SettingChangeRead']>>('/api/admin/settings/history', params),
}
