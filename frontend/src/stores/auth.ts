// Who is signed in. Tokens live in localStorage so a reload keeps the session.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { authApi } from '@/api/auth'
import type { Schemas, SignInAnswer, TokenResponse, TwoFactorChallenge, User } from '@/api/types'

const ACCESS = 'acgw.access'
const REFRESH = 'acgw.refresh'

export const useAuthStore = defineStore('auth', () => {
  const accessToken = ref<string | null>(localStorage.getItem(ACCESS))
  const refreshToken = ref<string | null>(localStorage.getItem(REFRESH))
  const user = ref<User | null>(null)
  const signedIn = computed(() => accessToken.value !== null)
  const isAdmin = computed(() => user.value?.role === 'admin')
  let refreshing: Promise<boolean> | null = null

  function keep(tokens: TokenResponse): void {
    accessToken.value = tokens.access_token
    refreshToken.value = tokens.refresh_token
    localStorage.setItem(ACCESS, tokens.access_token)
    localStorage.setItem(REFRESH, tokens.refresh_token)
    if ('user' in tokens && tokens.user) user.value = tokens.user as User
  }

  function forget(): void {
    accessToken.value = null
    refreshToken.value = null
    user.value = null
    localStorage.removeItem(ACCESS)
    localStorage.removeItem(REFRESH)
  }

  async function signedInWith(answer: TokenResponse): Promise<void> {
    keep(answer)
    if (!user.value) user.value = await authApi.me()
  }

  /** The password step. Resolves to a challenge when the account also needs a code. */
  async function login(username: string, password: string, asAdmin = false): Promise<TwoFactorChallenge | null> {
    const answer: SignInAnswer = asAdmin ? await authApi.adminLogin(username, password) : await authApi.login(username, password)
    if ('two_factor_required' in answer) return answer
    await signedInWith(answer)
    return null
  }

  /** The second step: a code from the authenticator app or a recovery code. */
  async function finishLogin(factor: Omit<Schemas['TwoFactorLogin'], 'challenge_token'>, challenge: TwoFactorChallenge): Promise<void> {
    await signedInWith(await authApi.loginSecondFactor({ challenge_token: challenge.challenge_token, ...factor }))
  }

  async function loadUser(): Promise<User | null> {
    if (!accessToken.value) return null
    try {
      user.value = await authApi.me()
    } catch {
      forget()
    }
    return user.value
  }

  /** One refresh at a time, shared by every request that got a 401. */
  function refresh(): Promise<boolean> {
    if (!refreshToken.value) return Promise.resolve(false)
    refreshing ??= authApi
      .refresh(refreshToken.value)
      .then((tokens) => {
        keep(tokens)
        return true
      })
      .catch(() => {
        forget()
        return false
      })
      .finally(() => {
        refreshing = null
      })
    return refreshing
  }

  async function logout(): Promise<void> {
    const token = accessToken.value
    forget()
    if (token) await authApi.logout(token).catch(() => undefined)
  }

  return { accessToken, user, signedIn, isAdmin, login, finishLogin, loadUser, refresh, logout, forget }
})
