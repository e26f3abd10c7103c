// Hash-mode routes (the server serves static files only, no history fallback). meta.perm names
// the permission a page needs: the menu hides it and the guard refuses it; the server checks
// again on every call.
import { createRouter, createWebHashHistory } from 'vue-router'
import { session, can } from './api.js'

const routes = [
  { path: '/login', component: () => import('./views/Login.vue'), meta: { public: true } },
  { path: '/password', component: () => import('./views/Password.vue'), meta: { bare: true } },
  { path: '/', redirect: '/dashboard' },
  { path: '/dashboard', component: () => import('./views/Dashboard.vue'), meta: { nav: 'dashboard', perm: ['reports.read', 'events.read', 'devices.read'] } },
  { path: '/archives', component: () => import('./views/Archives.vue'), meta: { nav: 'archives', perm: 'archive.read' } },
  { path: '/archives/:code', component: () => import('./views/Person.vue'), meta: { nav: 'archives', perm: 'archive.read' } },
  { path: '/places', component: () => import('./views/Places.vue'), meta: { nav: 'places', perm: 'archive.read' } },
  { path: '/enrol', component: () => import('./views/Enrol.vue'), meta: { nav: 'enrol', perm: 'enrol' } },
  { path: '/devices', component: () => import('./views/Devices.vue'), meta: { nav: 'devices', perm: 'devices.read' } },
  { path: '/cameras', component: () => import('./views/Cameras.vue'), meta: { nav: 'cameras', perm: 'devices.read' } },
  { path: '/events', component: () => import('./views/Events.vue'), meta: { nav: 'events', perm: 'events.read' } },
  { path: '/alarms', component: () => import('./views/Alarms.vue'), meta: { nav: 'alarms', perm: 'events.read' } },
  { path: '/stats', component: () => import('./views/Stats.vue'), meta: { nav: 'stats', perm: 'reports.read' } },
  { path: '/admin/users', component: () => import('./views/Users.vue'), meta: { nav: 'users', perm: ['users.manage', 'roles.manage'], admin: true } },
  { path: '/admin/audit', component: () => import('./views/Audit.vue'), meta: { nav: 'audit', perm: 'audit.read', admin: true } },
  { path: '/admin/exports', component: () => import('./views/Exports.vue'), meta: { nav: 'exports', perm: ['export.approve', 'export.request'], admin: true } },
  { path: '/admin/maintenance', component: () => import('./views/Maintenance.vue'), meta: { nav: 'maintenance', perm: ['maintenance', 'policy.manage', 'keys.manage'], admin: true } },
  { path: '/forbidden', component: () => import('./views/Forbidden.vue') },
  { path: '/:rest(.*)*', redirect: '/dashboard' },
]

export const router = createRouter({ history: createWebHashHistory(), routes })

export const menu = routes.filter((r) => r.meta && r.meta.nav && !r.path.includes(':'))

// The page each role starts on: the dashboard for whoever works with records or devices
// (property manager, viewer, system administrator), the approvals for the security
// administrator, the audit log for the audit administrator; else the first page allowed.
export function home() {
  if (can(['events.read', 'devices.read', 'reports.read'])) return '/dashboard'
  if (can('export.approve')) return '/admin/exports'
  if (can('audit.read')) return '/admin/audit'
  const first = menu.find((r) => can(r.meta.perm))
  return first ? first.path : '/password'
}

router.beforeEach((to) => {
  if (to.meta.public) return true
  if (!session.token) return { path: '/login', query: to.fullPath !== '/dashboard' ? { next: to.fullPath } : {} }
  if (session.user && session.user.must_change_password && to.path !== '/password') return '/password'
  if (to.meta.perm && !can(to.meta.perm)) {
    // The landing page for someone who may not see the dashboard: their role's home.
    if (to.path === '/dashboard') return home()
    return { path: '/forbidden', query: { from: to.fullPath } }
  }
  return true
})
