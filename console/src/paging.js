// Server-side paging state for a list page: limit/offset from page and size.
import { reactive } from 'vue'

export function usePaging(load, size = 20) {
  const p = reactive({ page: 1, size, total: 0 })
  const params = () => ({ limit: p.size, offset: (p.page - 1) * p.size })
  const change = (page, s) => {
    p.page = page
    p.size = s
    load()
  }
  return { p, params, change }
}
