// Theme, language and toasts.
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'
import { i18n, setLocale, type Locale } from '@/i18n'

export type Theme = 'light' | 'dark'
export interface Toast {
  id: number
  kind: 'success' | 'error' | 'info'
  text: string
}

const THEME = 'acgw.theme'

function initialTheme(): Theme {
  const saved = localStorage.getItem(THEME)
  if (saved === 'light' || saved === 'dark') return saved
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

export const useUiStore = defineStore('ui', () => {
  const theme = ref<Theme>(initialTheme())
  const locale = ref<Locale>(i18n.global.locale.value as Locale)
  const toasts = ref<Toast[]>([])
  const sidebarOpen = ref(window.innerWidth >= 768)
  let next = 1

  watch(
    theme,
    (value) => {
      document.documentElement.classList.toggle('dark', value === 'dark')
      localStorage.setItem(THEME, value)
    },
    { immediate: true },
  )
  watch(locale, (value) => setLocale(value))

  function toggleTheme(): void {
    theme.value = theme.value === 'dark' ? 'light' : 'dark'
  }

  function toast(text: string, kind: Toast['kind'] = 'success', ms = 3500): void {
    const id = next++
    toasts.value.push({ id, kind, text })
    window.setTimeout(() => dismiss(id), ms)
  }

  function dismiss(id: number): void {
    toasts.value = toasts.value.filter((t) => t.id !== id)
  }

  return { theme, locale, toasts, sidebarOpen, toggleTheme, toast, dismiss }
})
