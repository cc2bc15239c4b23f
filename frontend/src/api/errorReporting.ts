// One place that tells the user about a failed request nobody handled (as vben's interceptor):
// a view awaits the API and lets an error go; Vue's error handler (event handlers, hooks,
// watchers) and the page's unhandled-rejection event both land here. A view that has more to say
// (a form's field errors, a conflict it explains) catches the error itself and this never sees it.
import type { App } from 'vue'
import { ApiError } from './http'

type Report = (message: string) => void

/** True when the error was an API error and the user was told. */
export function reportApiError(error: unknown, report: Report): boolean {
  if (!(error instanceof ApiError)) return false
  // An expired session is handled by the HTTP client: it signs the user out and shows sign-in.
  if (error.status !== 401) report(error.message)
  return true
}

export function installErrorReporting(app: App, report: Report): void {
  const previous = app.config.errorHandler
  app.config.errorHandler = (error, instance, info) => {
    if (reportApiError(error, report)) return
    if (previous) previous(error, instance, info)
    else console.error(error)
  }
  window.addEventListener('unhandledrejection', (event) => {
    if (reportApiError(event.reason, report)) event.preventDefault()
  })
}
