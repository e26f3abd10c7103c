// Structured details (audit records, archive history) as a line of text for people:
// "photo: 3，template: t-7" rather than JSON.
export function plainText(d) {
  if (d === null || d === undefined || d === '') return ''
  if (typeof d !== 'object') return String(d)
  if (Array.isArray(d)) return d.map(plainText).join('、')
  return Object.entries(d)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? plainText(v) : v}`)
    .join('，')
}
