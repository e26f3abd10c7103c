// A person's home in words: 安居示范社区 1号楼 1单元 101 (site, building, unit, room), as the
// persons list gives it (`home`), or the household's name when it has no room.
export function homeText(home) {
  if (!home) return ''
  const parts = [home.site, home.building, home.unit, home.room].filter(Boolean)
  return parts.length ? parts.join(' ') : home.household || ''
}
