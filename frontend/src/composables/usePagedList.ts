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

export interface CursorList<T> {
  rows: Ref<T[]>
  cursor: Ref<string | null>
  loading: Ref<boolean>
  /** From the first page again (new filters). */
  reload: () => Promise<void>
  /** The next page, appended. */
  more: () => Promise<void>
}

/** A list read page by page with a cursor (call logs, "My usage"): newest first, "load more". */
export function useCursorList<T>(
  fetchPage: (cursor: string | null) => Promise<{ items: T[]; next_cursor?: string | null }>,
): CursorList<T> {
  const rows = ref<T[]>([]) as Ref<T[]>
  const cursor = ref<string | null>(null)
  const loading = ref(false)
  let latest = 0

  async function read(after: string | null): Promise<void> {
    const mine = ++latest
    loading.value = true
    try {
      const page = await fetchPage(after)
      if (mine !== latest) return
      rows.value = after === null ? page.items : [...rows.value, ...page.items]
      cursor.value = page.next_cursor ?? null
    } finally {
      if (mine === latest) loading.value = false
    }
  }

  return {
    rows,
    cursor,
    loading,
    reload: () => {
      rows.value = []
      cursor.value = null
      return read(null)
    },
    more: () => (cursor.value ? read(cursor.value) : Promise.resolve()),
  }
}
