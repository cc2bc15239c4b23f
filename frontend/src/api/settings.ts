import { del, get, put } from './http'
import type { Page, Schemas } from './types'

export interface PublicSettings {
  site_name: string
  announcement: string
  registration_enabled: boolean
  default_model: string
  public_url: string
  email_verification: boolean
  require_verified_email: boolean
  /** Links can be mailed (password reset, address confirmation). */
  mail_enabled: boolean
}

export const settingsApi = {
  public: () => get<PublicSettings>('/api/settings/public'),
  all: () => get<Record<string, unknown>>('/api/admin/settings'),
  schema: () => get<Schemas['SettingsSchema']>('/api/admin/settings/schema'),
  save: (values: Record<string, unknown>) => put<Record<string, unknown>>('/api/admin/settings', values),
  reset: (key: string) => del(`/api/admin/settings/${key}`),
  history: (params: { page?: number; key?: string }) => get<Page<Schemas['SettingChangeRead']>>('/api/admin/settings/history', params),
}
