// Chart options and figures computed in the browser from the access records (refusals, which
// the report API does not count). Reads pages of 1000 up to a cap.
import { api } from './api.js'

export async function fetchEvents(params, cap = 5000) {
  const items = []
  let total = 0
  for (let offset = 0; offset < cap; offset += 1000) {
    const page = await api.get('/events', { ...params, limit: 1000, offset })
    total = page.total
    items.push(...page.items)
    if (page.items.length < 1000) break
  }
  return { items, total, partial: total > items.length }
}

export function decisionOf(e) {
  return e.decision || (e.payload && e.payload.decision) || ''
}

export function count(items, key) {
  const m = new Map()
  for (const x of items) {
    const k = key(x)
    m.set(k, (m.get(k) || 0) + 1)
  }
  return m
}

export function dayKey(ms) {
  const d = new Date(ms)
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
}

export function barOption(title, labels, series) {
  return {
    title: { text: title, left: 8, top: 4, textStyle: { fontSize: 14 } },
    tooltip: { trigger: 'axis' },
    legend: { top: 4, right: 8 },
    grid: { left: 40, right: 16, top: 44, bottom: 28 },
    xAxis: { type: 'category', data: labels, axisLabel: { hideOverlap: true, overflow: 'truncate', width: 110 } },
    yAxis: { type: 'value', minInterval: 1 },
    series: series.map((s) => ({ type: 'bar', stack: s.stack, ...s })),
  }
}

export function pieOption(title, data) {
  return {
    title: { text: title, left: 8, top: 4, textStyle: { fontSize: 14 } },
    tooltip: { trigger: 'item' },
    legend: { bottom: 0 },
    // Counts on the ring, names in the legend (outside labels get cut off in a small card).
    series: [{ type: 'pie', radius: ['40%', '65%'], data, label: { position: 'inside', formatter: '{c}', color: '#fff' } }],
  }
}
