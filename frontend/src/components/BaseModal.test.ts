import { mount } from '@vue/test-utils'
import { describe, expect, it, vi } from 'vitest'
import BaseModal from './BaseModal.vue'

describe('BaseModal', () => {
  it('closes on Escape, and only while it is open', () => {
    const onClose = vi.fn()
    const modal = mount(BaseModal, { props: { title: 'Edit', onClose }, global: { stubs: { teleport: true } } })
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }))
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))
    expect(onClose).toHaveBeenCalledTimes(1)
    modal.unmount()
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))
    expect(onClose).toHaveBeenCalledTimes(1)
  })
})
