import { post, get, patch, http } from './http'
import type { Schemas, TokenResponse, User } from './types'

export const authApi = {
  login: (username: string, password: string) =>
    post<TokenResponse>('/api/auth/login', { username, password }, { _noRefresh: true } as never),
  adminLogin: (username: string, password: string) =>
    post<TokenResponse>('/api/auth/admin/login', { username, password }, { _noRefresh: true } as never),
  register: (body: Schemas['RegisterRequest']) => post<User>('/api/auth/register', body),
  refresh: async (refreshToken: string) =>
    (await http.post<TokenResponse>('/api/auth/refresh', { refresh_token: refreshToken }, { _noRefresh: true } as never)).data,
  logout: (refreshToken: string) =>
    post<void>('/api/auth/logout', { refresh_token: refreshToken }, { _noRefresh: true } as never),
  me: () => get<User>('/api/auth/me'),
  updateMe: (body: Schemas['MeUpdate']) => patch<User>('/api/auth/me', body),
  changePassword: (body: Schemas['PasswordChange']) => post<void>('/api/auth/me/password', body),
}
