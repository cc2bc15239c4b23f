// The sidebar's conversation list: pages loaded as the user scrolls, searched on the server.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { conversationsApi } from '@/api/conversations'
import type { ConversationSummary } from '@/api/types'

const PAGE_SIZE = 30

export const useConversationsStore = defineStore('conversations', () => {
  const items = ref<ConversationSummary[]>([])
  const query = ref('')
  const archived = ref(false)
  const loading = ref(false)
  const hasMore = ref(true)
  let page = 0
  let generation = 0

  async function reset(): Promise<void> {
    generation++
    items.value = []
    page = 0
    hasMore.value = true
    await loadMore()
  }

  async function loadMore(): Promise<void> {
    if (loading.value || !hasMore.value) return
    loading.value = true
    const mine = generation
    try {
      const result = await conversationsApi.list({
        page: page + 1,
        page_size: PAGE_SIZE,
        q: query.value || undefined,
        archived: archived.value,
      })
      if (mine !== generation) return
      page += 1
      const known = new Set(items.value.map((c) => c.id))
      items.value.push(...result.items.filter((c) => !known.has(c.id)))
      hasMore.value = page * PAGE_SIZE < result.total
    } finally {
      loading.value = false
    }
  }

  function upsert(conversation: ConversationSummary): void {
    const index = items.value.findIndex((c) => c.id === conversation.id)
    if (index >= 0) items.value[index] = { ...items.value[index], ...conversation }
    else items.value.unshift(conversation)
    sort()
  }

  function remove(id: number): void {
    items.value = items.value.filter((c) => c.id !== id)
  }

  function sort(): void {
    items.value.sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.last_message_at.localeCompare(a.last_message_at))
  }

  return { items, query, archived, loading, hasMore, reset, loadMore, upsert, remove }
})
