import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import { defineComponent, h, nextTick } from 'vue'
import type { Page } from '@/api/types'
import { useCursorList, usePagedList, type PageRequest } from './usePagedList'

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}
const page = (items: string[], total = items.length): Page<string> => ({ items, total, page: 1, page_size: 20 })
const flush = async () => {
  for (let i = 0; i < 5; i++) await nextTick()
}

function host(fetchPage: (r: PageRequest) => Promise<Page<string>>, debounceMs = 0) {
  let list!: ReturnType<typeof usePagedList<string>>
  const wrapper = mount(
    defineComponent({
      setup() {
        list = usePagedList(fetchPage, { debounceMs })
        return () => h('div')
      },
    }),
  )
  return { wrapper, list: () => list }
}

describe('usePagedList', () => {
  it('loads the first page on mount, and each page asked for', async () => {
    const asked: PageRequest[] = []
    const { list } = host(async (r) => (asked.push(r), page([`row ${r.page}`], 45)))
    await flush()
    expect([list().rows.value, list().total.value, list().loading.value]).toEqual([['row 1'], 45, false])
    list().page.value = 3
    await flush()
    expect(list().rows.value).toEqual(['row 3'])
    expect(asked.map((r) => [r.page, r.page_size, r.q])).toEqual([
      [1, 20, undefined],
      [3, 20, undefined],
    ])
  })

  it('searches from the first page, once typing pauses', async () => {
    const asked: PageRequest[] = []
    const { list } = host(async (r) => (asked.push(r), page([])), 20)
    await flush()
    list().page.value = 2
    await flush()
    list().query.value = 'a'
    list().query.value = 'al'
    list().query.value = ' alice '
    await new Promise((done) => setTimeout(done, 60))
    await flush()
    expect(asked.map((r) => [r.page, r.q])).toEqual([
      [1, undefined],
      [2, undefined],
      [1, 'alice'],
    ])
  })

  it('keeps the newest answer when an older one arrives late', async () => {
    const slow = deferred<Page<string>>()
    const fast = deferred<Page<string>>()
    const answers = [slow.promise, fast.promise]
    const { list } = host(() => answers.shift()!)
    await flush()
    list().page.value = 2
    await flush()
    fast.resolve(page(['page 2']))
    await flush()
    slow.resolve(page(['page 1']))
    await flush()
    expect([list().rows.value, list().loading.value]).toEqual([['page 2'], false])
  })
})

describe('useCursorList', () => {
  it('reads on, then starts again from the first page, and keeps only the newest answer', async () => {
    const pages: Record<string, { items: string[]; next_cursor: string | null }> = {
      first: { items: ['a', 'b'], next_cursor: 'c1' },
      c1: { items: ['c'], next_cursor: null },
    }
    const asked: (string | null)[] = []
    const list = useCursorList<string>(async (cursor) => (asked.push(cursor), pages[cursor ?? 'first']!))
    await list.reload()
    await list.more()
    expect([list.rows.value, list.cursor.value]).toEqual([['a', 'b', 'c'], null])
    await list.more() // nothing more to read
    await list.reload()
    expect(list.rows.value).toEqual(['a', 'b'])
    expect(asked).toEqual([null, 'c1', null])
  })
})
