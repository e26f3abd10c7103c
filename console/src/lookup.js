// Names for the codes and ids the lists carry: persons (identity code → name), door terminals
// and snapshot cameras (id → name, site, doors). Each is read once and kept for the session
// (a page asks again after a minute at most), so a list page costs a few requests, not one
// per row. Only what the account may read is asked for: without the permission the code
// itself is shown.
import { reactive } from 'vue'
import { api, can, onSessionClear } from './api.js'

const persons = reactive(new Map()) // code → { name, status } (null: asked, unknown)
const asking = new Set()
const devices = reactive({ map: new Map(), at: 0, loading: null })
const cameras = reactive({ map: new Map(), at: 0, loading: null })
const FRESH_MS = 60000

// Resolves the names of CODES (identity codes) in the background; the returned map fills in
// as the answers come, and templates that read personName() update by themselves.
export async function resolvePersons(codes) {
  if (!can('archive.read')) return
  const wanted = [...new Set(codes.filter((c) => c && !persons.has(c) && !asking.has(c)))]
  await Promise.all(wanted.map(async (code) => {
    asking.add(code)
    try {
      // A list search (not an archive view): code or name contains q; the exact code wins.
      const r = await api.get('/persons', { q: code, limit: 20 }, { quiet: true })
      const hit = r.items.find((p) => p.code === code)
      persons.set(code, hit ? { name: hit.name, status: hit.status } : null)
      // The other rows of the answer are names too.
      for (const p of r.items) if (!persons.get(p.code)) persons.set(p.code, { name: p.name, status: p.status })
    } catch {
      persons.set(code, null)
    } finally {
      asking.delete(code)
    }
  }))
}

export function personName(code) {
  const p = code && persons.get(code)
  return p ? p.name : ''
}

export function rememberPersons(items) {
  for (const p of items || []) if (p && p.code && p.name) persons.set(p.code, { name: p.name, status: p.status })
}

async function refresh(store, path, key, perm) {
  if (!can(perm)) return store.map
  if (store.loading) return store.loading
  if (Date.now() - store.at < FRESH_MS) return store.map
  store.loading = (async () => {
    try {
      const r = await api.get(path, { limit: 1000 }, { quiet: true })
      store.map = new Map(r.items.map((d) => [d[key], d]))
      store.at = Date.now()
    } catch {
      // names are a nicety: the ids stay
    } finally {
      store.loading = null
    }
    return store.map
  })()
  return store.loading
}

export const loadDevices = () => refresh(devices, '/devices', 'device_id', 'devices.read')
export const loadCameras = () => refresh(cameras, '/viid/devices', 'id', 'devices.read')

export function device(id) {
  return devices.map.get(id) || null
}

export function camera(id) {
  return cameras.map.get(id) || null
}

export function deviceName(id) {
  const d = devices.map.get(id) || cameras.map.get(id)
  return d ? d.name || id : id || ''
}

// "1号楼1单元门" for the only door of a terminal; "1号楼1单元门 · 2号门" when it has several
// (doors are numbered from 0 on the wire, from 1 for people).
export function doorName(t, id, door) {
  const d = devices.map.get(id)
  const name = deviceName(id)
  if (door === null || door === undefined || door === '') return name
  if (d && d.doors <= 1) return name
  return `${name} · ${t('events.doorN', { n: Number(door) + 1 })}`
}

onSessionClear(() => {
  persons.clear()
  Object.assign(devices, { map: new Map(), at: 0, loading: null })
  Object.assign(cameras, { map: new Map(), at: 0, loading: null })
})
