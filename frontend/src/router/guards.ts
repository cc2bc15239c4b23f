import type { Router } from 'vue-router'
import { useAuthStore } from '@/stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    auth?: boolean
    admin?: boolean
    guest?: boolean
  }
}

export function installGuards(router: Router): void {
  router.beforeEach(async (to) => {
    const auth = useAuthStore()
    if (auth.signedIn && !auth.user) await auth.loadUser()
    if (to.matched.some((r) => r.meta.auth) && !auth.user) {
      const admin = to.matched.some((r) => r.meta.admin)
      return { name: admin ? 'admin-login' : 'login', query: { next: to.fullPath } }
    }
    if (to.matched.some((r) => r.meta.admin) && !auth.isAdmin) return { name: 'chat-new' }
    if (to.meta.guest && auth.user) return { name: auth.isAdmin && to.name === 'admin-login' ? 'admin' : 'chat-new' }
    return true
  })
}
