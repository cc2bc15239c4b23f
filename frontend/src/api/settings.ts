import { client, unwrap } from './http'
import type { Query } from './query'

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
  /** What prices, costs, budgets and balances are in (ISO 4217). */
  currency: string
  /** Users may keep private agents. */
  user_agents_enabled: boolean
}

export const settingsApi = {
  // The server answers a map of the public settings (`PUBLIC_KEYS`) and `mail_enabled`.
  public: async () => (await unwrap(client.GET('/api/settings/public'))) as unknown as PublicSettings,
  all: () => unwrap(client.GET('/api/admin/settings')),
  schema: () => unwrap(client.GET('/api/admin/settings/schema')),
  save: (values: Record<string, unknown>) => unwrap(client.PUT('/api/admin/settings', { body: values })),
  reset: (key: string) => unwrap(client.DELETE('/api/admin/settings/{key}', { params: { path: { key } } })),
  history: (query: Query<'/api/admin/settings/history'>) =>
    unwrap(client.GET('/api/admin/settings/history', { params: { query } })),
}
