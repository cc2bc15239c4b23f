import { client, NO_REFRESH, unwrap } from './http'
import type { Schemas } from './types'

// Sign-in, refresh and the link flows answer 401 for wrong input: no session renewal for those.
const anonymous = { headers: NO_REFRESH }

export const authApi = {
  login: (username: string, password: string) =>
    unwrap(client.POST('/api/auth/login', { body: { username, password }, ...anonymous })),
  adminLogin: (username: string, password: string) =>
    unwrap(client.POST('/api/auth/admin/login', { body: { username, password }, ...anonymous })),
  /** The second step when two-factor sign-in is on: a code from the app, or a recovery code. */
  loginSecondFactor: (body: Schemas['TwoFactorLogin']) => unwrap(client.POST('/api/auth/login/2fa', { body, ...anonymous })),
  register: (body: Schemas['RegisterRequest']) => unwrap(client.POST('/api/auth/register', { body })),
  refresh: (refreshToken: string) =>
    unwrap(client.POST('/api/auth/refresh', { body: { refresh_token: refreshToken }, ...anonymous })),
  /** End the session the access token names (sent explicitly: the store has already forgotten it). */
  logout: (accessToken: string) =>
    unwrap(client.POST('/api/auth/logout', { headers: { ...NO_REFRESH, Authorization: `Bearer ${accessToken}` } })),
  me: () => unwrap(client.GET('/api/auth/me')),
  updateMe: (body: Schemas['MeUpdate']) => unwrap(client.PATCH('/api/auth/me', { body })),
  changePassword: (body: Schemas['PasswordChange']) => unwrap(client.POST('/api/auth/me/password', { body })),
  uploadAvatar: (file: Blob, name: string) =>
    unwrap(
      client.PUT('/api/auth/me/avatar', {
        body: { file: name } as unknown as Schemas['Body_auth-upload_avatar'],
        bodySerializer: () => {
          const form = new FormData()
          form.append('file', file, name)
          return form
        },
      }),
    ),
  removeAvatar: () => unwrap(client.DELETE('/api/auth/me/avatar')),
  sendVerification: () => unwrap(client.POST('/api/auth/send-verification')),
  verifyEmail: (token: string) => unwrap(client.POST('/api/auth/verify-email', { body: { token }, ...anonymous })),
  requestPasswordReset: (email: string) => unwrap(client.POST('/api/auth/password/reset', { body: { email }, ...anonymous })),
  confirmPasswordReset: (token: string, newPassword: string, revokeApiKeys = false) =>
    unwrap(
      client.POST('/api/auth/password/reset/confirm', {
        body: { token, new_password: newPassword, revoke_api_keys: revokeApiKeys },
        ...anonymous,
      }),
    ),
}

export const twoFactorApi = {
  status: () => unwrap(client.GET('/api/auth/2fa')),
  setup: (password: string) => unwrap(client.POST('/api/auth/2fa/setup', { body: { password } })),
  enable: (code: string) => unwrap(client.POST('/api/auth/2fa/enable', { body: { code } })),
  newRecoveryCodes: (code: string) => unwrap(client.POST('/api/auth/2fa/recovery-codes', { body: { code } })),
  disable: (body: Schemas['TwoFactorDisable']) => unwrap(client.POST('/api/auth/2fa/disable', { body })),
}
