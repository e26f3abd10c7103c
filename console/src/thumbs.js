// Face thumbnails, fetched with the session token (an <img> cannot send it) through the
// audited image routes with `?size=` (the longer side in pixels; the server downscales), and
// kept as object URLs for the session: every view is audited and counts towards the risk
// warning (docs/security.md), so an image is fetched once, not on each refresh of a list.
import { onSessionClear, request } from './api.js'

const MAX_ENTRIES = 600
const MAX_IN_FLIGHT = 4
const cache = new Map() // key → Promise<string> (object URL, '' when the image is missing)
let inFlight = 0
const waiting = []

async function slot() {
  if (inFlight < MAX_IN_FLIGHT) {
    inFlight++
    return
  }
  await new Promise((resolve) => waiting.push(resolve))
  inFlight++
}

function release() {
  inFlight--
  const next = waiting.shift()
  if (next) next()
}

async function fetchThumb(path, size) {
  await slot()
  try {
    const res = await request('GET', path, { params: { size }, raw: true, quiet: true })
    return URL.createObjectURL(await res.blob())
  } catch {
    return '' // no image (deleted, no snapshot) or no permission: the placeholder stays
  } finally {
    release()
  }
}

export function thumbUrl(path, size) {
  const key = `${path}?${size}`
  let p = cache.get(key)
  if (p) {
    // Most recently used last (Map keeps insertion order).
    cache.delete(key)
    cache.set(key, p)
    return p
  }
  p = fetchThumb(path, size)
  cache.set(key, p)
  if (cache.size > MAX_ENTRIES) {
    const [oldKey, oldP] = cache.entries().next().value
    cache.delete(oldKey)
    oldP.then((u) => u && URL.revokeObjectURL(u))
  }
  return p
}

// The session ended: drop every image.
export function clearThumbs() {
  for (const p of cache.values()) p.then((u) => u && URL.revokeObjectURL(u))
  cache.clear()
}

onSessionClear(clearThumbs)
