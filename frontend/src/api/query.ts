// The query parameters an API route takes, from the OpenAPI document.
import type { paths } from './schema'

type Get<P extends keyof paths> = paths[P] extends { get: infer Op } ? Op : never

/** `Query<'/api/admin/logs'>`: the GET route's query parameters, all optional. */
export type Query<P extends keyof paths> = NonNullable<
  Get<P> extends { parameters: { query?: infer Q } } ? Q : never
>
