import { createPinia } from 'pinia'
import { createApp } from 'vue'
import App from './App.vue'
import { installErrorReporting } from './api/errorReporting'
import { configureHttp } from './api/http'
import { i18n } from './i18n'
import { router } from './router'
import { useAuthStore } from './stores/auth'
import { useSiteStore } from './stores/site'
import { useUiStore } from './stores/ui'
import './style.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia).use(i18n)

const auth = useAuthStore(pinia)
configureHttp({
  token: () => auth.accessToken,
  language: () => String(i18n.global.locale.value),
  refresh: () => auth.refresh(),
  unauthorized: () => {
    auth.forget()
    const here = router.currentRoute.value
    if (!here.meta.guest) void router.push({ name: 'login', query: { next: here.fullPath } })
  },
})
const ui = useUiStore(pinia)
installErrorReporting(app, (message) => ui.toast(message, 'error'))
void useSiteStore(pinia).load()
app.use(router)
app.mount('#app')
