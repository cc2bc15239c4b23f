import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'

vi.mock('@/api/auth', () => ({
  authApi: {
    refresh: vi.fn(async () => {
      await new Promise((r) => setTimeout(r, 10))
      return { access_token: 'a2', refresh_token: 'r2', token_type: 'bearer' }
    }),
    logout: vi.fn(async () => undefined),
    login: vi.fn(async (username: string) =>
      username === 'two'
        ? { two_factor_required: true, challenge_token: 'c1', expires_in: 300 }
        : { access_token: 'a3', refresh_token: 'r3', token_type: 'bearer', user: { id: 1, username } },
    ),
    loginSecondFactor: vi.fn(async (body: { challenge_token: string; code?: string }) => {
      if (body.code !== '123456') throw new Error('invalid_code')
      return { access_token: 'a4', refresh_token: 'r4', token_type: 'bearer', user: { id: 2, username: 'two' } }
    }),
  },
}))
vi.mock('@/api/conversations', () => ({
  conversationsApi: {
    list: vi.fn(async ({ page }: { page: number }) => ({
      items: Array.from({ length: page === 3 ? 5 : 30 }, (_, i) => ({ id: (page - 1) * 30 + i + 1, title: `c${i}`, pinned: false, last_message_at: new Date(2026, 0, 1, 0, 0, 1000 - ((page - 1) * 30 + i)).toISOString() })),
      total: 65,
      page,
      page_size: 30,
    })),
  },
}))

const { authApi } = await import('@/api/auth')
const { useAuthStore } = await import('./auth')
const { useConversationsStore } = await import('./conversations')

beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
})

describe('auth store', () => {
  it('shares one refresh between concurrent 401s and keeps the new tokens', async () => {
    localStorage.setItem('acgw.access', 'a1')
    localStorage.setItem('acgw.refresh', 'r1')
    const auth = useAuthStore()
    const results = await Promise.all([auth.refresh(), auth.refresh(), auth.refresh()])
    expect(results).toEqual([true, true, true])
    expect(authApi.refresh).toHaveBeenCalledTimes(1)
    expect(auth.accessToken).toBe('a2')
    expect(localStorage.getItem('acgw.refresh')).toBe('r2')
  })

  it('signs in at once without two-factor sign-in', async () => {
    const auth = useAuthStore()
    expect(await auth.login('one', 'pw')).toBeNull()
    expect(auth.accessToken).toBe('a3')
    expect(auth.user?.username).toBe('one')
  })

  it('keeps no token until the second factor is right', async () => {
    const auth = useAuthStore()
    const challenge = await auth.login('two', 'pw')
    expect(challenge?.challenge_token).toBe('c1')
    expect(auth.signedIn).toBe(false)
    await expect(auth.finishLogin({ code: '000000' }, challenge!)).rejects.toThrow('invalid_code')
    expect(auth.signedIn).toBe(false)
    await auth.finishLogin({ code: '123456' }, challenge!)
    expect(authApi.loginSecondFactor).toHaveBeenLastCalledWith({ challenge_token: 'c1', code: '123456' })
    expect(auth.accessToken).toBe('a4')
    expect(localStorage.getItem('acgw.refresh')).toBe('r4')
    expect(auth.user?.username).toBe('two')
  })

  it('signing out forgets the tokens', async () => {
    localStorage.setItem('acgw.access', 'a1')
    localStorage.setItem('acgw.refresh', 'r1')
    const auth = useAuthStore()
    await auth.logout()
    expect(auth.signedIn).toBe(false)
    expect(localStorage.getItem('acgw.access')).toBeNull()
    expect(authApi.logout).toHaveBeenCalledWith('a1') // the server ends the session it names
  })
})

describe('conversation list', () => {
  it('loads page after page until everything is there, without duplicates', async () => {
    const list = useConversationsStore()
    await list.reset()
    await list.loadMore()
    await list.loadMore()
    await list.loadMore() // nothing left: no request
    expect(list.items).toHaveLength(65)
    expect(new Set(list.items.map((c) => c.id)).size).toBe(65)
    expect(list.hasMore).toBe(false)
  })

  it('keeps pinned chats first when one is updated', async () => {
    const list = useConversationsStore()
    await list.reset()
    list.upsert({ ...list.items[10], pinned: true })
    expect(list.items[0].id).toBe(11)
  })
})
