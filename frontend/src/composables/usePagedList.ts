// One list page's state: rows of the current page, the total, the page number, a search box
// (debounced), loading. Every admin list uses it. A failed load is left to the app's error
// reporting (api/errorReporting.ts); an answer that arrives after a newer request is dropped.
import { watchDebounced } from '@vueuse/core'
import { onMounted, ref, watch, type Ref } from 'vue'
import type { Page } from '@/api/types'

export interface PageRequest {
  page: number
  page_size: number
  q?: string
}

export interface PagedList<T> {
  rows: Ref<T[]>
  total: Ref<number>
  page: Ref<number>
  pageSize: number
  query: Ref<string>
  loading: Ref<boolean>
  load: () => Promise<void>
}

export function usePagedList<T>(
  fetchPage: (request: PageRequest) => Promise<Page<T>>,
  { pageSize = 20, debounceMs = 300 }: { pageSize?: number; debounceMs?: number } = {},
): PagedList<T> {
  const rows = ref<T[]>([]) as Ref<T[]>
  const total = ref(0)
  const page = ref(1)
  const query = ref('')
  const loading = ref(true)
  let latest = 0

  async function load(): Promise<void> {
    const mine = ++latest
    loading.value = true
    try {
      const result = await fetchPage({ page: page.value, page_size: pageSize, q: query.value.trim() || undefined })
      if (mine !== latest) return
      rows.value = result.items
      total.value = result.total
    } finally {
      if (mine === latest) loading.value = false
    }
  }

  onMounted(load)
  watch(page, load)
  watchDebounced(
    query,
    () => {
      if (page.value === 1) void load()
      else page.value = 1 // the page watcher loads
    },
    { debounce: debounceMs },
  )
  return { rows, total, page, pageSize, query, loading, load }
}
