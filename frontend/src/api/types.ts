// Types of the backend's API, from its OpenAPI document (src/api/schema.d.ts is generated).
import type { components } from './schema'

export type Schemas = components['schemas']
export type User = Schemas['UserRead']
export type TokenResponse = Schemas['TokenResponse']
export type TwoFactorChallenge = Schemas['TwoFactorChallengeResponse']
export type SignInAnswer = TokenResponse | TwoFactorChallenge
export type MailConfig = Schemas['MailConfigRead']
export type Agent = Schemas['AgentRead']
export type ConversationSummary = Schemas['ConversationSummary']
export type ConversationDetail = Schemas['ConversationDetail']
export type ConversationRead = Schemas['ConversationRead']
export type Message = Schemas['MessageRead']
export type ChatParams = Schemas['ChatParams']
export type ApiKey = Schemas['ApiKeyRead']
export type ApiKeyCreated = Schemas['ApiKeyCreated']
export type Channel = Schemas['ChannelRead']
export type ChannelCreate = Schemas['ChannelCreate']
export type ChannelUpdate = Schemas['ChannelUpdate']
export type IPRule = Schemas['IPRuleRead']
export type CallLog = Schemas['CallLogRecord']
export type UsageRecord = Schemas['UsageRecord']
export type LogTotals = Schemas['LogTotals']
export type SettingInfo = Schemas['SettingInfo']

export interface Page<T> {
  items: T[]
  total: number
  page: number
  page_size: number
}
export interface CursorPage<T> {
  items: T[]
  next_cursor: string | null
}
