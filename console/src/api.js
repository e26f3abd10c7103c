// The one door to the server: every call carries the session token, errors become ApiError
// with the server's code, and the session-wide answers (expired session, forced password
// change) send the user to the right page from here, so pages only handle their own errors.
import { reactive } from 'vue'

export const session = reactive({
  token: sessionStorage.getItem('anju.token') || '',
  user: JSON.parse(sessionStorage.getItem('anju.user') || 'null'),
  notice: '', // a message for the login page (session expired, logged out)
})

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {}
    super(e.message || `HTTP ${status}`)
    this.status = status
    this.code = e.code || `http_${status}`
    this.detail = e
  }
}

let onSessionEnd = () => {}
let onPasswordRequired = () => {}
export function setHandlers(h) {
  onSessionEnd = h.sessionEnd
  onPasswordRequired = h.passwordRequired
}

// Caches that belong to one session (names, thumbnails): emptied when the session changes,
// since another account may see other sites.
const clearHooks = []
export function onSessionClear(fn) {
  clearHooks.push(fn)
}
function runClearHooks() {
  for (const fn of clearHooks) fn()
}

export function saveSession(token, user) {
  if (token !== session.token) runClearHooks()
  session.token = token
  session.user = user
  sessionStorage.setItem('anju.token', token)
  sessionStorage.setItem('anju.user', JSON.stringify(user))
}

export function clearSession(notice = '') {
  runClearHooks()
  session.token = ''
  session.user = null
  session.notice = notice
  sessionStorage.removeItem('anju.token')
  sessionStorage.removeItem('anju.user')
}

export function can(perm) {
  if (!perm) return true
  const p = (session.user && session.user.permissions) || []
  return Array.isArray(perm) ? perm.some((x) => p.includes(x)) : p.includes(perm)
}

function query(params) {
  if (!params) return ''
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v)
  const s = q.toString()
  return s ? `?${s}` : ''
}

// raw: return the Response (binary downloads, streams); quiet: no session redirects (probing).
export async function request(method, path, { body, params, raw, quiet, signal } = {}) {
  const headers = {}
  if (session.token) headers.Authorization = `Bearer ${session.token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(`api/v1${path}${query(params)}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  })
  if (res.ok) {
    if (raw) return res
    const text = await res.text()
    return text ? JSON.parse(text) : {}
  }
  let data = null
  try {
    data = await res.json()
  } catch {
    data = null
  }
  const err = new ApiError(res.status, data)
  if (!quiet && session.token) {
    if (res.status === 401 && path !== '/auth/login') onSessionEnd(err.code)
    else if (res.status === 403 && (err.code === 'password_change_required' || err.code === 'totp_enrolment_required'))
      onPasswordRequired(err.code)
  }
  throw err
}

export const api = {
  get: (p, params, o = {}) => request('GET', p, { params, ...o }),
  post: (p, body, o = {}) => request('POST', p, { body: body ?? {}, ...o }),
  put: (p, body, o = {}) => request('PUT', p, { body, ...o }),
  patch: (p, body, o = {}) => request('PATCH', p, { body, ...o }),
  del: (p, o = {}) => request('DELETE', p, o),
}

// An authenticated binary (photo, snapshot, CSV) as an object URL.
export async function blobUrl(path, params) {
  const res = await request('GET', path, { params, raw: true })
  return URL.createObjectURL(await res.blob())
}

export async function download(path, params, filename) {
  const url = await blobUrl(path, params)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.click()
  setTimeout(() => URL.revokeObjectURL(url), 10000)
}

export function saveText(text, filename, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob(['\ufeff' + text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.click()
  setTimeout(() => URL.revokeObjectURL(url), 10000)
}

// Whether the server offers a route (features that land in other issues: auth, exports,
// reports, the event stream). Answered from the OpenAPI document, once.
let routes = null
export async function hasRoute(method, path) {
  if (!routes) {
    routes = fetch('api/openapi.json')
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .catch(() => ({ paths: {} }))
  }
  const doc = await routes
  const ops = (doc.paths || {})[`/api/v1${path}`]
  return !!ops && !!ops[method.toLowerCase()]
}

export function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader()
    r.onload = () => resolve(String(r.result).split(',')[1])
    r.onerror = reject
    r.readAsDataURL(file)
  })
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined || ms === 0) return '-'
  const d = new Date(ms)
  const p = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

export function startOfDay(d = new Date()) {
  const x = new Date(d)
  x.setHours(0, 0, 0, 0)
  return x.getTime()
}
