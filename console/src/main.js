import { createApp } from 'vue'
// Components come per page (unplugin-vue-components); the services pages call directly need
// their styles here.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import App from './App.vue'
import { router } from './router.js'
import { i18n } from './i18n.js'
import { setHandlers, clearSession, session } from './api.js'

setHandlers({
  sessionEnd(code) {
    clearSession(code === 'session_expired' ? 'expired' : 'unauthenticated')
    router.replace({ path: '/login', query: { next: router.currentRoute.value.fullPath } })
  },
  passwordRequired(code) {
    if (session.user && code === 'password_change_required') session.user.must_change_password = true
    if (session.user && code === 'totp_enrolment_required') session.user.totp_required = true
    router.replace('/password')
  },
})

createApp(App).use(i18n).use(router).mount('#app')
