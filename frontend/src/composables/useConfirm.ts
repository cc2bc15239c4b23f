// A confirmation dialog for destructive actions: `if (await confirm({...})) …`. With `option`, the
// dialog also shows a checkbox: `const { ok, option } = await confirmWithOption({...})`.
import { reactive } from 'vue'

export const confirmState = reactive({
  open: false,
  title: '',
  message: '',
  confirmLabel: '',
  danger: true,
  option: '', // the checkbox's label; empty: no checkbox
  optionChecked: false,
})
let resolver: ((ok: boolean) => void) | null = null

interface ConfirmOptions {
  title: string
  message: string
  confirmLabel?: string
  danger?: boolean
}

export function confirm(options: ConfirmOptions): Promise<boolean> {
  resolver?.(false)
  Object.assign(confirmState, { open: true, confirmLabel: '', danger: true, option: '', optionChecked: false, ...options })
  return new Promise((resolve) => {
    resolver = resolve
  })
}

export async function confirmWithOption(options: ConfirmOptions & { option: string }): Promise<{ ok: boolean; option: boolean }> {
  const ok = await confirm(options)
  return { ok, option: ok && confirmState.optionChecked }
}

export function settle(ok: boolean): void {
  confirmState.open = false
  resolver?.(ok)
  resolver = null
}
