import { post, get, patch, http } from './http'
import type { Schemas, SignInAnswer, TokenResponse, User } from './types'

const noRefresh = { _noRefresh: true } as never

export const authApi = {
  login: (username: string, password: string) => post<SignInAnswer>('/api/auth/login', { username, password }, noRefresh),
  adminLogin: (username: string, password: string) =>
    post<SignInAnswer>('/api/auth/admin/login', { username, password }, noRefresh),
  /** The second step when two-factor sign-in is on: a code from the app, or a recovery code. */
  loginSecondFactor: (body: Schemas['TwoFactorLogin']) => post<TokenResponse>('/api/auth/login/2fa', body, noRefresh),
  register: (body: Schemas['RegisterRequest']) => post<User>('/api/auth/register', body),
  refresh: async (refreshToken: string) =>
    (await http.post<TokenResponse>('/api/auth/refresh', { refresh_token: refreshToken }, { _noRefresh: true } as never)).data,
  logout: (refreshToken: string) =>
    post<void>('/api/auth/logout', { refresh_token: refreshToken }, { _noRefresh: true } as never),
  me: () => get<User>('/api/auth/me'),
  updateMe: (body: Schemas['MeUpdate']) => patch<User>('/api/auth/me', body),
  changePassword: (body: Schemas['PasswordChange']) => post<void>('/api/auth/me/password', body),
  uploadAvatar: async (file: Blob, name: string) => {
    const form = new FormData()
    form.append('file', file, name)
    return (await http.put<User>('/api/auth/me/avatar', form)).data
  },
  removeAvatar: async () => (await http.delete<User>('/api/auth/me/avatar')).data,
  sendVerification: () => post<Schemas['Accepted']>('/api/auth/send-verification'),
  verifyEmail: (token: string) => post<User>('/api/auth/verify-email', { token }, noRefresh),
  requestPasswordReset: (email: string) => post<Schemas['Accepted']>('/api/auth/password/reset', { email }, noRefresh),
  confirmPasswordReset: (token: string, newPassword: string, revokeApiKeys = false) =>
    post<void>('/api/auth/password/reset/confirm', { token, new_password: newPassword, revoke_api_keys: revokeApiKeys }, noRefresh),
}

export const twoFactorApi = {
  status: () => get<Schemas['TwoFactorStatus']>('/api/auth/2fa'),
  setup: (password: string) => post<Schemas['TwoFactorSetup']>('/api/auth/2fa/setup', { password }),
  enable: (code: string) => post<Schemas['RecoveryCodes']>('/api/auth/2fa/enable', { code }),
  newRecoveryCodes: (code: string) => post<Schemas['RecoveryCodes']>('/api/auth/2fa/recovery-codes', { code }),
  disable: (body: Schemas['TwoFactorDisable']) => post<void>('/api/auth/2fa/disable', body),
}
