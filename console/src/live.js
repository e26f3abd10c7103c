// The live event stream (GET /api/v1/events/stream, server-sent events). EventSource cannot send
// the Authorization header, so the stream is read with fetch and a ReadableStream. The server
// ends each response after what is new (or a 15 s ping); the next request continues after the
// last id seen, so nothing is lost between responses. Stops on close().
import { request } from './api.js'

export function openStream(onMessage, onState) {
  let stopped = false
  const ctl = new AbortController()
  let lastId = null
  async function run() {
    while (!stopped) {
      let ok = false
      try {
        const params = lastId === null ? undefined : { after: lastId }
        const res = await request('GET', '/events/stream', { raw: true, signal: ctl.signal, params })
        onState('stream')
        const reader = res.body.getReader()
        const dec = new TextDecoder()
        let buf = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buf += dec.decode(value, { stream: true })
          let i
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i)
            buf = buf.slice(i + 2)
            let type = 'message'
            const data = []
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim()
              else if (line.startsWith('id:')) lastId = line.slice(3).trim()
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
            }
            if (data.length) {
              try {
                onMessage(type, JSON.parse(data.join('\n')))
              } catch {
                // a malformed message is skipped
              }
            }
          }
        }
        ok = true
      } catch (e) {
        if (stopped || (e && e.status && e.status < 500)) {
          onState('closed', e)
          return
        }
      }
      if (!ok) onState('reconnecting')
      await new Promise((r) => setTimeout(r, ok ? 200 : 3000))
    }
  }
  run()
  return {
    close() {
      stopped = true
      ctl.abort()
    },
  }
}
