#!/usr/bin/env node
// End-to-end tests of the web console: Playwright (playwright-core) drives Debian's
// Chromium headless against a real anju-server (real SQLite database, real face models) and a
// real anju-terminal replaying LFW photos. Every step goes through the browser except starting
// the programs and reading the initial passwords they print.
//
//   node tests/console/run.mjs [--keep]
//   env: ANJU_BIN_DIR (build/bin), ANJU_CONSOLE_DIR (build/console), ANJU_DATA_DIR (../shared/data),
//        ANJU_CONSOLE_TEST_OUT (build/console-test: screenshots, logs, timings.json),
//        CHROMIUM (/usr/bin/chromium)
//
// Exit 0 when every step passed, 1 otherwise; a step the server cannot do yet (a route of
// another issue missing) is reported as SKIPPED with the reason.
import { spawn } from 'node:child_process'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const require = createRequire(path.join(top, 'console/package.json'))
const { chromium } = require('playwright-core')

const bin = process.env.ANJU_BIN_DIR || path.join(top, 'build/bin')
const consoleDir = process.env.ANJU_CONSOLE_DIR || path.join(top, 'build/console')
const dataDir = process.env.ANJU_DATA_DIR || path.join(top, '../shared/data')
const out = process.env.ANJU_CONSOLE_TEST_OUT || path.join(top, 'build/console-test')
const shots = path.join(out, 'screenshots')
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium'
const keep = process.argv.includes('--keep')
const lfw = path.join(dataDir, 'lfw/lfw')

// The server's certificate is self-signed; this process only talks to its own localhost server.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'

const results = []
const timings = {}
const children = []
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'anju-console-'))
let serverLog = ''
let currentPage = null // for a screenshot when a step fails

function log(...a) {
  console.log('[console-test]', ...a)
}

function need(cond, what) {
  if (!cond) throw new Error(what)
}

// ---- programs ------------------------------------------------------------------------------

function start(name, args, env = {}) {
  const p = spawn(path.join(bin, name), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const file = fs.createWriteStream(path.join(out, `${name}.log`))
  p.stdout.on('data', (d) => {
    file.write(d)
    if (name === 'anju-server') serverLog += d.toString()
  })
  p.stderr.on('data', (d) => file.write(d))
  children.push(p)
  return p
}

// A free loopback TCP port (the kernel's choice, released at once).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

function helpText(name) {
  return new Promise((resolve) => {
    const p = spawn(path.join(bin, name), ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let s = ''
    p.stdout.on('data', (d) => (s += d))
    p.stderr.on('data', (d) => (s += d))
    p.on('close', () => resolve(s))
  })
}

// RFC 6238 (SHA-1, 30 s, 6 digits) from a base32 secret, as an authenticator app computes it.
function totp(secret, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset))
  const h = createHmac('sha1', key).update(counter).digest()
  const o = h[h.length - 1] & 15
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0')
}

// A uniform grey 250x250 24-bit BMP: an empty frame between people, a photo without a face.
function greyBmp() {
  const w = 250, h = 250
  const row = Buffer.concat([Buffer.alloc(3 * w, 60), Buffer.alloc((4 - ((3 * w) % 4)) % 4)]) // rows pad to 4 bytes
  const pixels = Buffer.concat(Array(h).fill(row))
  const header = Buffer.alloc(54)
  header.write('BM', 0)
  header.writeUInt32LE(54 + pixels.length, 2)
  header.writeUInt32LE(54, 10)
  header.writeUInt32LE(40, 14)
  header.writeInt32LE(w, 18)
  header.writeInt32LE(h, 22)
  header.writeUInt16LE(1, 26)
  header.writeUInt16LE(24, 28)
  header.writeUInt32LE(pixels.length, 34)
  return Buffer.concat([header, pixels])
}

// Promise.race whose losers may reject later without an unhandled rejection.
function race(promises) {
  for (const p of promises) p.catch(() => {})
  return Promise.race(promises)
}

// ---- steps ---------------------------------------------------------------------------------

async function step(name, fn) {
  const t0 = Date.now()
  try {
    const r = await fn()
    if (r && r.skipped) {
      results.push({ name, status: 'SKIPPED', why: r.skipped })
      log(`SKIPPED ${name}: ${r.skipped}`)
    } else {
      results.push({ name, status: 'PASS', ms: Date.now() - t0 })
      log(`PASS ${name} (${Date.now() - t0} ms)`)
    }
    return true
  } catch (e) {
    if (currentPage) await currentPage.screenshot({ path: path.join(shots, `FAILED-${results.length + 1}.png`) }).catch(() => {})
    results.push({ name, status: 'FAIL', why: String(e && e.stack ? e.stack : e) })
    log(`FAIL ${name}: ${e && e.message}`)
    return false
  }
}

async function shot(page, name) {
  await page.waitForTimeout(300) // let charts finish their animation frame
  await page.screenshot({ path: path.join(shots, `${name}.png`) })
}

async function main() {
  fs.mkdirSync(shots, { recursive: true })
  need(fs.existsSync(path.join(bin, 'anju-server')), `no ${bin}/anju-server (make build)`)
  need(fs.existsSync(path.join(consoleDir, 'index.html')), `no console build in ${consoleDir} (make build)`)
  need(fs.existsSync(browserPath), `no Chromium at ${browserPath} (scripts/setup installs Debian's chromium)`)

  // ---- server
  const serverHelp = await helpText('anju-server')
  const plain = serverHelp.includes('--plain-http')
  const serverDir = path.join(tmp, 'server')
  const serverArgs = ['--data-dir', serverDir, '--listen', '127.0.0.1:0']
  // The terminal then speaks plain HTTP to the server too; the browser side works either way.
  if (plain) serverArgs.push('--plain-http')
  // Cameras reach the server on their own listener, plain HTTP with digest as most GA/T 1400
  // cameras speak it, while the API stays HTTPS by default (docs/viid.md).
  const cameraListen = serverHelp.includes('--camera-listen')
  const camBase = cameraListen ? `http://127.0.0.1:${await freePort()}` : null
  if (cameraListen) serverArgs.push('--camera-listen', camBase.slice('http://'.length))
  start('anju-server', serverArgs, { ANJU_CONSOLE_DIR: consoleDir })
  const base = await waitFor(() => {
    const m = serverLog.match(/(https?:\/\/127\.0\.0\.1:\d+)/)
    return m && m[1]
  }, 60000, 'the server URL on stdout')
  await waitFor(async () => (await fetch(`${base}/healthz`)).ok, 30000, 'healthz')
  await waitFor(() => serverLog.includes('backup.key'), 5000, 'the whole start banner')
  log(`server ${base}`)
  const openapi = await (await fetch(`${base}/api/openapi.json`)).json()
  const has = (method, p) => !!(openapi.paths[`/api/v1${p}`] || {})[method]
  const authApi = has('post', '/auth/login')
  const exportsApi = has('post', '/exports')
  const adminToken = fs.readFileSync(path.join(serverDir, 'admin.token'), 'utf8').trim()
  // "初始管理员 / initial administrator: admin      一次性口令 / one-time password: …"
  const initial = {}
  for (const m of serverLog.matchAll(/initial administrator:\s*(\S+)\s.*?one-time password:\s*(\S+)/g)) initial[m[1]] = m[2]
  log(`auth API: ${authApi}; initial passwords found for: ${Object.keys(initial).join(', ') || 'none'}`)

  const api = async (method, p, body, token = adminToken) => {
    const r = await fetch(`${base}/api/v1${p}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await r.text()
    return { status: r.status, body: text ? JSON.parse(text) : {} }
  }

  const browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox'] })
  const ctxOpts = { viewport: { width: 1366, height: 768 }, ignoreHTTPSErrors: true, locale: 'zh-CN', acceptDownloads: true }
  const ctx = await browser.newContext(ctxOpts)
  const page = await ctx.newPage()
  currentPage = page
  page.setDefaultTimeout(15000)
  const consoleErrors = []
  const apiErrors = []
  page.on('pageerror', (e) => consoleErrors.push(String(e)))
  page.on('response', async (r) => {
    if (r.url().includes('/api/') && r.status() >= 400) apiErrors.push(`${r.request().method()} ${r.url().replace(base, '')} ${r.status()} ${(await r.text().catch(() => '')).slice(0, 200)}`)
  })

  const passwords = {}
  const secrets = {}
  // The policy refuses a password containing the user name: a different one per account.
  const newPassword = (u) => `Anju#2026-${['admin', 'secadmin', 'auditadmin', 'op1', 'viewer1'].indexOf(u) + 10}Qz`

  async function logout() {
    await page.goto(`${base}/#/login`)
    await page.evaluate(() => sessionStorage.clear())
    await page.reload()
    await page.locator('[data-test=login]').waitFor()
  }

  // Log in through the login page; first logins change the one-time password and enrol TOTP
  // when the server asks for it.
  let currentUser = ''
  async function login(user) {
    currentUser = user
    await logout()
    if (!authApi) {
      await page.fill('input[name=token]', adminToken)
      await page.click('[data-test=login]')
      await page.locator('.aside').waitFor()
      return
    }
    const pw = passwords[user]
    await page.fill('input[name=username]', user)
    await page.fill('input[name=password]', pw)
    await page.click('[data-test=login]')
    const next = await race([
      page.locator('.aside').waitFor().then(() => 'in'),
      page.locator('input[name=old_password]').waitFor().then(() => 'password'),
      page.locator('input[name=totp]').waitFor().then(() => 'totp'),
      page.locator('[data-test=totp-secret], button:has-text("生成密钥")').first().waitFor().then(() => 'totp-setup'),
    ])
    if (next === 'totp') {
      await page.fill('input[name=totp]', await freshTotp(user))
      await page.click('[data-test=login]')
      await page.locator('.aside').waitFor()
      return
    }
    if (next === 'password') {
      await page.fill('input[name=old_password]', pw)
      await page.fill('input[name=new_password]', newPassword(user))
      await page.fill('input[name=new_password2]', newPassword(user))
      await page.click('[data-test=change-password]')
      passwords[user] = newPassword(user)
      await race([
        page.locator('.aside').waitFor(),
        page.locator('button:has-text("生成密钥")').waitFor(),
      ])
    }
    if (await page.locator('button:has-text("生成密钥")').isVisible()) {
      await page.click('button:has-text("生成密钥")')
      const secret = (await page.locator('[data-test=totp-secret]').textContent()).trim()
      secrets[user] = secret
      // The otpauth URI as a QR code for the authenticator app, beside the copyable secret.
      const qr = page.locator('[data-test=totp-qr]')
      await qr.waitFor()
      await waitFor(() => qr.evaluate((img) => img.complete && img.naturalWidth >= 100), 5000, 'the TOTP QR code drawn')
      timings.totp_qr_px = await qr.evaluate((img) => img.naturalWidth)
      need(await page.locator('[data-test=totp-copy]').isVisible(), 'no copy button beside the secret')
      if (!fs.existsSync(path.join(shots, '02a-totp-qr.png'))) await shot(page, '02a-totp-qr')
      await page.fill('input[name=totp_code]', await freshTotp(user))
      await page.click('button:has-text("确认绑定")')
    }
    await page.locator('.aside').waitFor()
  }

  // A code is accepted once: the next use waits for the next 30 s window.
  const usedWindow = {}
  async function freshTotp(user) {
    while (usedWindow[user] === Math.floor(Date.now() / 30000)) await page.waitForTimeout(500)
    usedWindow[user] = Math.floor(Date.now() / 30000)
    return totp(secrets[user])
  }

  async function nav(hash) {
    await page.goto(`${base}/#${hash}`)
  }

  async function prompt(value) {
    const box = page.locator('.el-message-box')
    await box.waitFor()
    if (value !== undefined) await box.locator('input').fill(String(value))
    await box.locator('.el-message-box__btns .el-button--primary').click()
    await box.waitFor({ state: 'hidden' })
  }

  // ---- 1. a visitor sees the Chinese login page; first load time
  await step('visitor sees the Chinese login page (登录), first load measured', async () => {
    const fresh = await browser.newContext(ctxOpts)
    const p = await fresh.newPage()
    const t0 = Date.now()
    await p.goto(`${base}/`)
    await p.locator('[data-test=login]').waitFor()
    timings.first_load_login_visible_ms = Date.now() - t0
    timings.navigation = await p.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0]
      return { dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd), load_ms: Math.round(n.loadEventEnd) }
    })
    timings.transferred_bytes = await p.evaluate(() => performance.getEntriesByType('resource').reduce((s, r) => s + (r.transferSize || r.encodedBodySize || 0), 0))
    const text = await p.locator('body').innerText()
    need(text.includes('登录'), 'no 登录 on the page')
    await p.screenshot({ path: path.join(shots, '01-login.png') })
    await p.click('button.lang')
    await p.locator('text=Log in').first().waitFor()
    await p.screenshot({ path: path.join(shots, '01-login-en.png') })
    await fresh.close()
    // The same with gzip only (clients without brotli): the build writes .br and .gz beside
    // each file and anju-server sends them as they are (src/server/console_files.cpp).
    const gz = await browser.newContext({ ...ctxOpts, extraHTTPHeaders: { 'Accept-Encoding': 'gzip, deflate' } })
    const gp = await gz.newPage()
    const t1 = Date.now()
    await gp.goto(`${base}/`)
    await gp.locator('[data-test=login]').waitFor()
    timings.first_load_login_visible_gzip_ms = Date.now() - t1
    await gz.close()
    need(timings.first_load_login_visible_ms < 2000, `first load ${timings.first_load_login_visible_ms} ms > 2 s`)
    need(timings.first_load_login_visible_gzip_ms < 2000, `first load (gzip) ${timings.first_load_login_visible_gzip_ms} ms > 2 s`)
  })

  // ---- 2. the administrators' first login; accounts for an operator and a viewer
  const haveAccounts = authApi && initial.admin && initial.secadmin
  if (authApi) Object.assign(passwords, initial)
  passwords.op1 = 'Start#2026-aQ7'
  passwords.viewer1 = 'Start#2026-bR8'
  let operator = 'admin'

  await step('admin: first login (password change, TOTP), dashboard', async () => {
    if (authApi && !haveAccounts) return { skipped: 'server has auth but no initial passwords found on its stdout' }
    await login('admin')
    await page.locator('.stat').first().waitFor()
    await shot(page, '02-dashboard')
  })

  if (haveAccounts) {
    await step('admin creates the accounts op1 and viewer1', async () => {
      await nav('/admin/users')
      for (const u of ['op1', 'viewer1']) {
        await page.click('[data-test=new-user]')
        await page.fill('input[name=new_username]', u)
        await page.fill('input[name=new_display]', u === 'op1' ? '物业操作员一' : '查看员一')
        await page.fill('input[name=new_password]', passwords[u])
        await page.click('[data-test=save-user]')
        await page.locator(`[data-test=users] >> text=${u}`).first().waitFor()
      }
      await shot(page, '03-users')
    })
    await step('secadmin: first login (password change, TOTP), grants operator and viewer', async () => {
      await login('secadmin')
      await nav('/admin/users')
      for (const [u, role] of [['op1', 'operator'], ['viewer1', 'viewer']]) {
        await page.fill('input[name=role_username]', u)
        await page.click('[data-test=roles-by-name]')
        await page.locator(`[data-role=${role}]`).click()
        await page.click('[data-test=save-roles]')
        await page.locator('.el-message--success').first().waitFor()
      }
      const me = await api('GET', '/users', null, await page.evaluate(() => sessionStorage.getItem('anju.token')))
      const roles = Object.fromEntries((me.body.items || []).map((u) => [u.username, u.roles]))
      need(JSON.stringify(roles.op1) === '["operator"]', `op1 roles ${JSON.stringify(roles.op1)}`)
      need(JSON.stringify(roles.viewer1) === '["viewer"]', `viewer1 roles ${JSON.stringify(roles.viewer1)}`)
    })
    operator = 'op1'
  }

  // ---- 3. devices: the terminal's enrolment code (sysadmin / token)
  let enrolmentCode = ''
  let deviceId = ''
  await step('devices: add a door terminal, read its enrolment code', async () => {
    if (authApi && haveAccounts) await login('admin')
    else if (!authApi) await login('token')
    else return { skipped: 'no administrator login' }
    await nav('/devices')
    await page.click('[data-test=new-device]')
    await page.fill('input[name=device_name]', '1号楼1单元门')
    await page.click('[data-test=device-save]')
    enrolmentCode = (await page.locator('[data-test=enrolment-code]').textContent()).trim()
    deviceId = (await page.locator('.el-alert__title').first().textContent()).match(/\(([^)]+)\)/)[1]
    need(/^[A-Z0-9]{4}-/.test(enrolmentCode), `enrolment code ${enrolmentCode}`)
    await shot(page, '04-devices')
    // Remote open: a command queued for the terminal (it executes it after registering).
    await page.locator('button:has-text("远程开门")').first().click()
    await prompt()
    await page.locator('.el-message--success').first().waitFor()
    const cmds = await api('GET', `/devices/${deviceId}/commands`)
    need(JSON.stringify(cmds.body).includes('open_door'), `no open_door command: ${JSON.stringify(cmds.body).slice(0, 200)}`)
  })

  // ---- 4. the operator: places, a tenant with consent, enrolment, access group
  const tenantCode = 'T0001'
  let tenantPhotos = []
  await step('operator: create site, building, unit, room, household', async () => {
    if (authApi && !haveAccounts) return { skipped: 'no operator account' }
    await login(operator)
    await nav('/places')
    for (const [level, name] of [['sites', '安居示范社区'], ['buildings', '1号楼'], ['units', '1单元'], ['rooms', '101'], ['households', '101户']]) {
      await page.click(`[data-test=new-${level}]`)
      await prompt(name)
      await page.locator(`[data-level=${level}] .item:has-text("${name}")`).click()
    }
    await shot(page, '05-places')
  })

  await step('operator: move in a tenant with consent (archive page)', async () => {
    if (authApi && !haveAccounts) return { skipped: 'no operator account' }
    await nav('/archives')
    await page.click('[data-test=new-person]')
    await page.fill('input[name=name]', '张三明')
    await page.fill('input[name=code]', tenantCode)
    await page.fill('input[name=phone]', '13800000001')
    await page.locator('.el-dialog .el-select').first().click()
    await page.locator('.el-select-dropdown__item:has-text("101户")').click()
    await page.click('[data-test=save-person]')
    await page.locator('[data-test=consent-state]').waitFor()
    need((await page.locator('[data-test=consent-state]').textContent()).includes('有效授权'), 'consent not active')
    await page.locator('.el-tabs__item:has-text("住户")').click()
    await page.locator('td:has-text("101")').first().waitFor()
    // The household tab names the place from the community down to the room.
    await page.locator('[data-test=households] td:has-text("安居示范社区")').waitFor()
    need((await page.locator('[data-test=households]').innerText()).includes('1号楼'), 'household tab without the building')
    await shot(page, '06-person')
    await nav('/archives')
    await page.fill('input[name=q]', '张三')
    await page.keyboard.press('Enter')
    await page.locator(`td:has-text("${tenantCode}")`).waitFor()
    await shot(page, '07-archives')
  })

  await step('operator: enrol a face photo from LFW (quality gate answers in the page)', async () => {
    if (authApi && !haveAccounts) return { skipped: 'no operator account' }
    await nav(`/enrol?code=${tenantCode}`)
    await page.locator('[data-test=photo-file]').waitFor()
    // A picture without a face: the gate's reason appears in words.
    const blank = path.join(tmp, 'no-face.bmp')
    fs.writeFileSync(blank, greyBmp())
    await page.setInputFiles('[data-test=photo-file]', blank)
    await waitFor(async () => await page.locator('[data-test=submit-photo]').isEnabled(), 10000, 'the photo read')
    await page.click('[data-test=submit-photo]')
    await page.locator('[data-test=enrol-result] [data-reason=no_face]').waitFor()
    need((await page.locator('[data-reason=no_face]').innerText()).includes('未检测到人脸'), 'no_face not explained')
    await shot(page, '08-enrol-refused')
    if (!fs.existsSync(lfw)) return { skipped: `no evaluation data: LFW not in ${lfw} (set ANJU_DATA_DIR); the refusal was checked` }
    const people = fs.readdirSync(lfw).filter((d) => fs.readdirSync(path.join(lfw, d)).length >= 3).sort()
    let accepted = false
    const refusals = []
    for (const person of people.slice(0, 6)) {
      const photos = fs.readdirSync(path.join(lfw, person)).sort().map((f) => path.join(lfw, person, f))
      await page.setInputFiles('[data-test=photo-file]', photos[0])
      await waitFor(async () => (await page.locator('[data-test=enrol-result] .el-alert').count()) === 0 &&
        (await page.locator('[data-test=submit-photo]').isEnabled()), 10000, 'the photo read')
      await page.click('[data-test=submit-photo]')
      const r = page.locator('[data-test=enrol-result] .el-alert')
      await r.first().waitFor()
      const text = await r.first().innerText()
      if (text.includes('登记成功')) {
        accepted = true
        tenantPhotos = photos.slice(1)
        timings.enrolled_person = person
        break
      }
      refusals.push(`${person}: ${text.replace(/\s+/g, ' ')}`)
    }
    timings.enrol_refusals = refusals
    need(accepted, `no photo accepted: ${refusals.join('; ')}`)
    await shot(page, '08-enrol')
  })

  // ---- 4b. archive search by phone and by face photo; the quality check before enrolling
  await step('operator: search the archives by phone (last 4 digits) finds the tenant', async () => {
    if (authApi && !haveAccounts) return { skipped: 'no operator account' }
    await nav('/archives')
    await page.fill('input[name=phone_search]', '0001')
    await page.click('[data-test=search]')
    await page.locator(`td:has-text("${tenantCode}")`).waitFor()
    await waitFor(async () => (await page.locator('.el-table__body tr').count()) === 1, 10000, 'one row')
    need((await page.locator('.el-table__body tr').first().innerText()).includes('13800000001'), 'phone not shown')
    await shot(page, '08b-search-phone')
    await page.fill('input[name=phone_search]', '9999')
    await page.click('[data-test=search]')
    await page.locator('.el-table__empty-text').waitFor()
  })

  await step('operator: search by photo (以图搜人) shows the enrolled tenant first', async () => {
    if (!tenantPhotos.length) return { skipped: 'no enrolled tenant' }
    // A second enrolled person (through the API), so that rank 1 means something.
    const people = fs.readdirSync(lfw).filter((d) => fs.readdirSync(path.join(lfw, d)).length >= 3).sort()
    const other = people.find((d) => d !== timings.enrolled_person && !tenantPhotos[0].includes(`/${d}/`))
    need((await api('POST', '/persons', { code: 'T0002', name: '李四海', phone: '13900000002' })).status === 201, 'second person')
    need((await api('POST', '/persons/T0002/consents', { notice_version: '2026-01', purpose: '门禁通行' })).status === 201, 'consent')
    let enrolled = false
    for (const f of fs.readdirSync(path.join(lfw, other)).sort()) {
      const r = await api('POST', '/persons/T0002/photos', { image: fs.readFileSync(path.join(lfw, other, f)).toString('base64') })
      if (r.status === 201) { enrolled = true; break }
    }
    need(enrolled, `no photo of ${other} enrolled`)
    await nav('/archives')
    await page.locator('[data-test=face-search]').waitFor()
    await page.setInputFiles('[data-test=face-search-file]', tenantPhotos[0])
    const first = page.locator('[data-test=face-results] [data-code]').first()
    await first.waitFor()
    need((await first.getAttribute('data-code')) === tenantCode, `first result ${await first.getAttribute('data-code')}`)
    const rows = await page.locator('[data-test=face-results] .el-table__body tr').allInnerTexts()
    timings.face_search_rows = rows.map((r) => r.replace(/\s+/g, ' '))
    need(rows.length === 2 && rows[0].includes('达到阈值') && rows[1].includes('低于阈值'), `rows: ${timings.face_search_rows.join(' | ')}`)
    await shot(page, '08c-search-photo')
    await first.click()
    await page.waitForURL(`**/archives/${tenantCode}`)
  })

  await step('operator: the enrolment page shows the quality verdict of an uploaded photo', async () => {
    if (!tenantPhotos.length) return { skipped: 'no enrolled tenant' }
    await nav(`/enrol?code=${tenantCode}`)
    await page.locator('[data-test=photo-file]').waitFor()
    await page.setInputFiles('[data-test=photo-file]', tenantPhotos[0])
    const verdict = page.locator('[data-test=quality-check]')
    await verdict.waitFor()
    const good = await verdict.getAttribute('data-ok')
    const goodText = (await verdict.innerText()).replace(/\s+/g, ' ')
    timings.quality_check_good = goodText
    need(good === 'true' && goodText.includes('质量检查通过'), `good photo: ${goodText}`)
    await shot(page, '08d-quality-ok')
    // The same face a quarter of the size on a grey canvas (drawn in the page): too small.
    const tiny = await page.evaluate(async (b64) => {
      const img = new Image()
      img.src = `data:image/jpeg;base64,${b64}`
      await img.decode()
      const c = document.createElement('canvas')
      c.width = 400
      c.height = 400
      const g = c.getContext('2d')
      g.fillStyle = '#787878'
      g.fillRect(0, 0, 400, 400)
      g.drawImage(img, 150, 150, img.width / 4, img.height / 4)
      return c.toDataURL('image/jpeg', 0.92).split(',')[1]
    }, fs.readFileSync(tenantPhotos[0]).toString('base64'))
    await page.setInputFiles('[data-test=photo-file]', { name: 'tiny.jpg', mimeType: 'image/jpeg', buffer: Buffer.from(tiny, 'base64') })
    await page.locator('[data-test=quality-check][data-ok=false]').waitFor()
    const badText = (await verdict.innerText()).replace(/\s+/g, ' ')
    timings.quality_check_tiny = badText
    need(badText.includes('人脸太小') || badText.includes('未检测到人脸'), `tiny face: ${badText}`)
    await shot(page, '08e-quality-refused')
    // Enrolling it is not even tried: the check's reasons are the answer.
    await page.click('[data-test=submit-photo]')
    await page.locator('[data-test=enrol-result] [data-reason]').first().waitFor()
    const p = await api('GET', `/persons/${tenantCode}`)
    need(p.body.photos.length === 1, `photos ${p.body.photos.length}`)
  })

  await step('operator: enrol several photos at once; each photo shows its own verdict', async () => {
    if (tenantPhotos.length < 2) return { skipped: 'fewer than 3 photos of the enrolled tenant' }
    await nav(`/enrol?code=${tenantCode}`)
    const guidance = page.locator('[data-test=photo-guidance]')
    await guidance.waitFor()
    need((await guidance.getAttribute('data-enrolled')) === '1', `enrolled ${await guidance.getAttribute('data-enrolled')}`)
    need((await guidance.innerText()).includes('2–3'), 'the page does not ask for 2–3 photos')
    // Two more photos of the tenant (later steps show the terminal the tenant's photos: enrolled or not,
    // they are the tenant) and a picture without a face.
    const blank = path.join(tmp, 'no-face-2.bmp')
    fs.writeFileSync(blank, greyBmp())
    const two = tenantPhotos.slice(-2)
    await page.setInputFiles('[data-test=photo-file]', [two[0], blank, two[1]])
    const items = page.locator('[data-test=photo-item]')
    await waitFor(async () => (await items.count()) === 3 &&
      (await page.locator('[data-test=photo-item][data-status=checking]').count()) === 0, 30000, 'three photos checked')
    need((await items.nth(1).getAttribute('data-status')) === 'refused', 'the picture without a face passed the check')
    need((await items.nth(1).innerText()).includes('未检测到人脸'), 'the refusal of the picture without a face is not explained')
    await page.click('[data-test=submit-photos]')
    await waitFor(async () => (await page.locator('[data-test=photo-item][data-status=enrolling], [data-test=photo-item][data-status=ready]').count()) === 0,
      30000, 'the photos enrolled')
    const statuses = await items.evaluateAll((els) => els.map((e) => e.dataset.status))
    timings.several_photos = statuses
    const accepted = statuses.filter((x) => x === 'accepted').length
    need(accepted >= 1 && statuses[1] === 'refused', `statuses ${statuses.join(',')}`)
    const p = await api('GET', `/persons/${tenantCode}`)
    need(p.body.photos.length === 1 + accepted, `photos ${p.body.photos.length}, accepted ${accepted}`)
    need((await guidance.getAttribute('data-enrolled')) === String(1 + accepted), 'the enrolled count did not follow')
    await shot(page, '08f-enrol-several')
  })

  await step('operator: the site page shows the site\'s recognition levels (as the server holds them)', async () => {
    if (authApi && !haveAccounts) return { skipped: 'no operator account' }
    const sites = await api('GET', '/sites')
    const site = (sites.body.items || []).find((x) => x.name === '安居示范社区')
    need(site, 'site not found')
    const levels = await api('GET', `/sites/${site.id}/thresholds`)
    need(levels.status === 200, `GET thresholds ${levels.status}`)
    await nav('/places')
    await page.locator('[data-level=sites] .item:has-text("安居示范社区")').click()
    const card = page.locator('[data-test=site-thresholds]')
    await card.waitFor()
    const shown = (await page.locator('[data-level-threshold=normal]').innerText()).trim()
    need(shown === levels.body.levels.normal.threshold.toFixed(4), `normal ${shown} vs ${levels.body.levels.normal.threshold}`)
    need((await card.innerText()).includes('识别阈值'), 'card title')
    timings.site_levels = { source: levels.body.source, normal: shown }
    await shot(page, '08h-site-levels')
  })

  // ---- 4c. enrolment from the browser's camera. Headless Chromium has no camera; its fake one
  // plays a file instead (MJPEG = JPEG frames one after another, written here at run time from an
  // LFW photo) or, without a file, a synthetic green pattern. A separate browser per camera, so
  // the other steps run without one.
  async function cameraPage(file) {
    const args = ['--no-sandbox', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']
    if (file) args.push(`--use-file-for-fake-video-capture=${file}`)
    const b = await chromium.launch({ executablePath: browserPath, headless: true, args })
    // The operator's session of the main browser (the console keeps it in sessionStorage).
    const session = await page.evaluate(() => ({ token: sessionStorage.getItem('anju.token'), user: sessionStorage.getItem('anju.user') }))
    const c = await b.newContext(ctxOpts)
    await c.addInitScript((s) => {
      if (s.token && !sessionStorage.getItem('anju.token')) {
        sessionStorage.setItem('anju.token', s.token)
        sessionStorage.setItem('anju.user', s.user)
      }
      // Keeps the streams the page opens, to see their tracks ended once the page is left.
      const md = navigator.mediaDevices
      if (!md) return
      const gum = md.getUserMedia.bind(md)
      window.__streams = []
      md.getUserMedia = async (...a) => {
        const st = await gum(...a)
        window.__streams.push(st)
        return st
      }
    }, session)
    const p = await c.newPage()
    p.setDefaultTimeout(15000)
    p.on('pageerror', (e) => consoleErrors.push(String(e)))
    // Quality checks in flight at once (the live check must not pile them up).
    const flight = { now: 0, max: 0, count: 0 }
    const isCheck = (r) => r.url().endsWith('/api/v1/faces/check')
    p.on('request', (r) => {
      if (!isCheck(r)) return
      flight.count++
      flight.max = Math.max(flight.max, ++flight.now)
    })
    const done = (r) => isCheck(r) && flight.now--
    p.on('requestfinished', done)
    p.on('requestfailed', done)
    currentPage = p
    return { b, p, flight }
  }
  const tracksOf = (p) => p.evaluate(() => (window.__streams || []).flatMap((s) => s.getTracks().map((tr) => tr.readyState)))

  await step('operator: enrol from the browser camera (fake camera plays a face; the live check passes)', async () => {
    if (!tenantPhotos.length) return { skipped: 'no enrolled tenant' }
    // A third person whose photo passes the gate and is nobody enrolled yet (no duplicate).
    const people = fs.readdirSync(lfw).filter((d) => fs.readdirSync(path.join(lfw, d)).length >= 3).sort()
    let face = ''
    for (const d of people.slice(10, 40)) {
      const f = path.join(lfw, d, fs.readdirSync(path.join(lfw, d)).sort()[0])
      const r = await api('POST', '/faces/check', { image: fs.readFileSync(f).toString('base64') })
      if (r.status === 200 && r.body.ok) {
        face = f
        break
      }
    }
    need(face, 'no LFW photo passes the quality check')
    timings.camera_face = path.relative(lfw, face)
    const mjpeg = path.join(out, 'camera-face.mjpeg') // test output, never committed
    fs.writeFileSync(mjpeg, Buffer.concat(Array(30).fill(fs.readFileSync(face))))
    need((await api('POST', '/persons', { code: 'T0003', name: '王五岳', phone: '13700000003' })).status === 201, 'third person')
    const { b, p, flight } = await cameraPage(mjpeg)
    try {
      await p.goto(`${base}/#/enrol?code=T0003`)
      await p.click('[data-test=record-consent]') // no consent yet: the page asks for it first
      await p.locator('.el-radio-button:has-text("摄像头拍照")').click()
      const t0 = Date.now()
      await p.click('[data-test=start-camera]')
      const verdict = p.locator('[data-test=quality-check]')
      await p.locator('[data-test=quality-check][data-ok=true]').waitFor({ timeout: 30000 })
      timings.camera_live_verdict_ms = Date.now() - t0
      const text = (await verdict.innerText()).replace(/\s+/g, ' ')
      timings.camera_live_verdict = text
      need(text.includes('质量检查通过'), `live verdict: ${text}`)
      await shot(p, '08f-camera-live-ok')
      // More framing with the server answering slower (2 s) than the 1 s tick: still one check
      // after another, never two at once.
      await p.route('**/api/v1/faces/check', async (r) => {
        await new Promise((res) => setTimeout(res, 2000))
        // Unrouted (or the page gone) in the meantime: the request went on without us.
        await r.continue().catch(() => {})
      })
      const before = flight.count
      await waitFor(() => flight.count >= before + 3, 30000, 'three slow live checks')
      await p.unroute('**/api/v1/faces/check')
      timings.camera_live_checks = flight.count
      need(flight.max === 1, `${flight.max} quality checks in flight at once`)
      await p.click('[data-test=capture-photo]')
      await waitFor(async () => await p.locator('[data-test=submit-photo]').isEnabled(), 10000, 'the photo taken')
      await p.click('[data-test=submit-photo]')
      const r = p.locator('[data-test=enrol-result] .el-alert').first()
      await r.waitFor()
      const rtext = (await r.innerText()).replace(/\s+/g, ' ')
      need(rtext.includes('登记成功'), `camera photo: ${rtext}`)
      await shot(p, '08g-camera-enrolled')
      const person = await api('GET', '/persons/T0003')
      need(person.body.photos.length === 1, `photos ${person.body.photos.length}`)
      // Leaving the page stops the camera.
      need((await tracksOf(p)).includes('live'), 'the camera was not open')
      await p.goto(`${base}/#/archives/T0003`)
      await p.locator('.el-tabs__item:has-text("人脸照片 (1)")').click()
      const states = await tracksOf(p)
      need(states.length && states.every((s) => s === 'ended'), `camera tracks after leaving the page: ${states.join(',')}`)
      const show = p.locator('.photo button:has-text("显示照片")').first()
      if (await show.isVisible()) await show.click()
      await p.locator('.photo img').waitFor()
      await shot(p, '08h-camera-person')
    } finally {
      currentPage = page
      await b.close()
    }
  })

  await step('operator: the camera without a face (synthetic pattern) shows "no face" live', async () => {
    const { b, p } = await cameraPage('')
    try {
      await p.goto(`${base}/#/enrol?code=${tenantCode}`)
      await p.locator('.el-radio-button:has-text("摄像头拍照")').click()
      await p.click('[data-test=start-camera]')
      await p.locator('[data-test=quality-check][data-ok=false] [data-check-reason=no_face]').waitFor({ timeout: 30000 })
      const text = (await p.locator('[data-test=quality-check]').innerText()).replace(/\s+/g, ' ')
      timings.camera_no_face_verdict = text
      need(text.includes('未检测到人脸'), `no-face verdict: ${text}`)
      await shot(p, '08i-camera-no-face')
      // Switching back to upload stops the camera too.
      await p.locator('.el-radio-button:has-text("上传照片")').click()
      await waitFor(async () => (await tracksOf(p)).every((s) => s === 'ended'), 5000, 'the camera stopped')
    } finally {
      currentPage = page
      await b.close()
    }
  })

  await step('operator: access group with the door and the tenant', async () => {
    if (!deviceId) return { skipped: 'no device' }
    if (authApi && !haveAccounts) return { skipped: 'no operator account' }
    await nav('/places')
    await page.locator('.el-tabs__item:has-text("通行权限组")').click()
    await page.click('button:has-text("新建权限组")')
    await prompt('1单元住户')
    await page.locator('button:has-text("设置门")').first().click()
    await prompt(`${deviceId}#0`)
    // The door by its terminal's name, not the device id (a one-door terminal has no number).
    await page.locator('[data-test=group-doors]:has-text("1号楼1单元门")').first().waitFor()
    need(!(await page.locator('[data-test=group-doors]').first().innerText()).includes(deviceId), 'door shown by device id')
    await page.locator('button:has-text("添加成员")').first().click()
    await prompt(tenantCode)
    const p = await api('GET', `/persons/${tenantCode}`)
    need(p.body.access_groups && p.body.access_groups.length === 1, 'tenant not in the group')
  })

  // ---- 5. the terminal: a tenant's access record and a stranger arrive live
  let sawLive = false
  await step('events page: the terminal\'s access records arrive live (tenant let in, stranger refused)', async () => {
    if (!enrolmentCode || !tenantPhotos.length) return { skipped: 'no device or no enrolled tenant' }
    await nav('/events')
    await page.locator('[data-test=live-mode]').waitFor()
    const frames = path.join(tmp, 'frames')
    fs.mkdirSync(frames)
    let n = 0
    const grey = (count) => {
      for (let i = 0; i < count; i++) fs.writeFileSync(path.join(frames, `${String(++n).padStart(5, '0')}.bmp`), greyBmp())
    }
    const show = (file) => {
      for (let i = 0; i < 8; i++) fs.symlinkSync(file, path.join(frames, `${String(++n).padStart(5, '0')}${path.extname(file)}`))
    }
    const singles = fs.readdirSync(lfw).filter((d) => fs.readdirSync(path.join(lfw, d)).length === 1).sort()
    const stranger = path.join(lfw, singles[Math.floor(singles.length / 2)], fs.readdirSync(path.join(lfw, singles[Math.floor(singles.length / 2)]))[0])
    grey(30) // the terminal registers and syncs the gallery first
    show(tenantPhotos[0])
    grey(60)
    show(stranger)
    grey(60)
    show(tenantPhotos[1] || tenantPhotos[0])
    grey(40)
    const cfg = {
      data_dir: path.join(tmp, 'terminal'),
      name: '1号楼1单元门',
      camera: `dir:${frames}?fps=10&loop=1`,
      door: 'log',
      server: { url: base, enrolment_code: enrolmentCode },
      status_listen: '',
    }
    fs.writeFileSync(path.join(tmp, 'terminal.json'), JSON.stringify(cfg))
    const t0 = Date.now()
    start('anju-terminal', ['--config', path.join(tmp, 'terminal.json')])
    const opened = page.locator(`[data-test=events] tr:has-text("${tenantCode}"):has-text("开门")`).first()
    await opened.waitFor({ timeout: 90000 })
    timings.terminal_start_to_access_record_on_page_ms = Date.now() - t0
    await page.locator('[data-test=events] tr:has-text("陌生人")').first().waitFor({ timeout: 60000 })
    sawLive = true
    timings.live_mode = await page.locator('[data-test=live-mode]').textContent()
    await shot(page, '09-events-live')
  })

  // ---- 5b. a snapshot camera's live view (GA/T 1400 digest, frames posted from here)
  await step('cameras: a snapshot camera on the plain-HTTP digest camera listener; its live view', async () => {
    if (!has('get', '/viid/devices/{id}/live.mjpeg')) return { skipped: 'no live view route' }
    if (!fs.existsSync(lfw)) return { skipped: `no evaluation data: LFW not in ${lfw}` }
    const cam = '34020000001190000099'
    const pass = 'camera-pass-99'
    need((await api('POST', '/viid/devices', { id: cam, password: pass, name: '南门抓拍' })).status === 201, 'camera not added')
    const person = fs.readdirSync(lfw).sort()[0]
    const jpeg = fs.readFileSync(path.join(lfw, person, fs.readdirSync(path.join(lfw, person)).sort()[0]))
    const md5 = (x) => createHash('md5').update(x).digest('hex')
    let nc = 0
    let challenge = null
    // POST with HTTP Digest (MD5, qop=auth), answering the server's challenge once.
    const post = async (uri, body, type) => {
      for (let attempt = 0; attempt < 2; ++attempt) {
        const headers = { 'Content-Type': type, 'User-Identify': cam }
        if (challenge) {
          const c = Object.fromEntries([...challenge.matchAll(/(\w+)="?([^",]*)"?/g)].map((m) => [m[1], m[2]]))
          const n = (++nc).toString(16).padStart(8, '0')
          const cnonce = randomBytes(8).toString('hex')
          const response = md5(`${md5(`${cam}:${c.realm}:${pass}`)}:${c.nonce}:${n}:${cnonce}:auth:${md5(`POST:${uri}`)}`)
          headers.Authorization = `Digest username="${cam}", realm="${c.realm}", nonce="${c.nonce}", uri="${uri}", qop=auth, nc=${n}, cnonce="${cnonce}", response="${response}", algorithm=MD5${c.opaque ? `, opaque="${c.opaque}"` : ''}`
        }
        const r = await fetch(`${camBase || base}${uri}`, { method: 'POST', headers, body })
        if (r.status !== 401) return r.status
        challenge = r.headers.get('www-authenticate')
        nc = 0
      }
      return 401
    }
    if (camBase) {
      // The camera listener: a challenge for an unauthenticated Register, nothing of the API.
      const reg = await fetch(`${camBase}/VIID/System/Register`, {
        method: 'POST', headers: { 'Content-Type': 'application/VIID+JSON', 'User-Identify': cam },
        body: JSON.stringify({ RegisterObject: { DeviceID: cam } }),
      })
      need(reg.status === 401 && /^Digest /.test(reg.headers.get('www-authenticate') || ''), `camera listener Register: ${reg.status}`)
      const apiOnCam = (await fetch(`${camBase}/api/v1/persons`, { headers: { Authorization: `Bearer ${adminToken}` } })).status
      need(apiOnCam === 404 || apiOnCam === 403, `the API answered on the camera listener: ${apiOnCam}`)
      timings.camera_listener = { url: camBase, register_unauthenticated: reg.status, api_on_camera_listener: apiOnCam }
      need((await post('/VIID/System/Register', JSON.stringify({ RegisterObject: { DeviceID: cam } }), 'application/VIID+JSON')) === 200, 'digest Register refused')
    }
    const frame = () => post('/VIID/Anju/LiveFrame', jpeg, 'image/jpeg')
    need((await frame()) === 200, 'live frame refused')
    // A capture with a three-frame clip (the anju extension AnjuClip).
    const data = jpeg.toString('base64')
    const face = {
      FaceID: `${cam}02${Date.now()}`, DeviceID: cam, InfoKind: 1,
      SubImageList: { SubImageInfoObject: [{ Type: '11', FileFormat: 'Jpeg', Width: 250, Height: 250, Data: data }] },
      AnjuClip: { Frames: [-400, 0, 400].map((o) => ({ OffsetMs: o, Width: 250, Height: 250, Data: data })) },
    }
    need((await post('/VIID/Faces', JSON.stringify({ FaceListObject: { FaceObject: [face] } }), 'application/VIID+JSON')) === 200, 'capture refused')
    const feeder = setInterval(() => frame().catch(() => {}), 500)
    try {
      await nav('/cameras')
      await page.locator('[data-test=cameras] tr:has-text("' + cam + '")').first().click()
      await waitFor(async () => page.locator('[data-test=live-frame]').evaluate((img) => img.complete && img.naturalWidth > 0).catch(() => false), 15000, 'a live frame in the page')
      const w = await page.locator('[data-test=live-frame]').evaluate((img) => img.naturalWidth)
      need(w === 250, `live frame width ${w}`)
      need((await page.locator('[data-test=live-mode]').textContent()).includes('实时流'), 'not the MJPEG stream')
      await shot(page, '10b-camera-live')
      // The capture in the list: its face thumbnail, the result in words.
      const thumb = page.locator('[data-test=captures] img[data-test=thumb]').first()
      await thumb.waitFor()
      await waitFor(() => thumb.evaluate((img) => img.complete && img.naturalWidth > 0), 10000, 'the capture thumbnail')
      timings.capture_thumb_px = await thumb.evaluate((img) => img.naturalWidth)
      need(timings.capture_thumb_px <= 80, `capture thumbnail ${timings.capture_thumb_px} px wide: not downscaled`)
      // The capture's detail: time, camera, score, result in words; then its clip played through.
      await page.locator('[data-test=capture-details]').first().click()
      const info = page.locator('[data-test=capture-info]')
      await info.waitFor()
      const infoText = (await info.innerText()).replace(/\s+/g, ' ')
      timings.capture_info = infoText
      need(infoText.includes('南门抓拍') && /\d{4}-\d\d-\d\d \d\d:\d\d/.test(infoText), `capture detail: ${infoText}`)
      need(/相似度/.test(infoText) && !/\b(accept|stranger|uncertain|queued|done|unrecognised)\b/.test(infoText), `capture detail: ${infoText}`)
      await page.locator('[data-test=clip] img').waitFor()
      await page.locator('[data-test=clip-play]').click()
      await waitFor(async () => (await page.locator('[data-test=clip-offset]').textContent()).includes('+0.4'), 10000, 'the clip played to its last frame')
      await shot(page, '10c-capture-clip')
    } finally {
      clearInterval(feeder)
      await nav('/dashboard')
    }
  })

  // ---- 6. the stranger alarm, acknowledged with a note
  await step('alarms: acknowledge the stranger alarm with a note', async () => {
    if (!sawLive) return { skipped: 'no terminal records' }
    await nav('/alarms')
    const row = page.locator('[data-test=alarms] tr:has-text("陌生人")').first()
    await row.waitFor({ timeout: 30000 })
    await shot(page, '10-alarms')
    await row.locator('[data-test=ack]').click()
    await prompt('已到现场查看，为送货人员 / courier, checked on site')
    const r = await api('GET', '/alarms?type=stranger&state=acknowledged')
    need(r.body.total >= 1, 'no acknowledged stranger alarm on the server')
    need((r.body.items[0].acknowledge_note || '').includes('送货'), 'note not stored')
  })

  // ---- 7. statistics and dashboard with data
  await step('statistics and dashboard show the day\'s records', async () => {
    if (!sawLive) return { skipped: 'no terminal records' }
    await nav('/dashboard')
    await waitFor(async () => Number(await page.locator('[data-test=today-open]').textContent()) >= 1, 30000, 'entries on the dashboard')
    await shot(page, '11-dashboard-data')
    await nav('/stats')
    await page.locator('canvas').first().waitFor()
    await shot(page, '12-stats')
    const tablet = await browser.newContext({ ...ctxOpts, viewport: { width: 768, height: 1024 } })
    // The same session in a tablet-sized window: the token is in place before the page starts.
    await tablet.addInitScript(([t, u]) => {
      sessionStorage.setItem('anju.token', t)
      sessionStorage.setItem('anju.user', u)
    }, await page.evaluate(() => [sessionStorage.getItem('anju.token'), sessionStorage.getItem('anju.user')]))
    const tp = await tablet.newPage()
    await tp.goto(`${base}/#/dashboard`)
    await tp.locator('.stat').first().waitFor()
    await tp.waitForTimeout(500)
    await tp.screenshot({ path: path.join(shots, '13-dashboard-tablet.png') })
    await tablet.close()
  })

  // ---- 8. export with approval by a second user
  let exportRequested = false
  let secToken = ''
  await step('export: operator requests an export in the console; cannot approve it', async () => {
    if (!exportsApi || !haveAccounts) return { skipped: 'server has no export approval API or no accounts' }
    await nav('/events')
    await page.click('[data-test=export]')
    await page.fill('input[name=reason]', '街道办季度核查 / quarterly check')
    await page.click('[data-test=export-submit]')
    await page.locator('.el-message--success').first().waitFor()
    await nav('/admin/exports')
    await page.locator('[data-test=exports] [data-state=pending]').first().waitFor()
    need(!(await page.locator('[data-test=approve]').count()), 'the requester can approve their own export')
    exportRequested = true
  })
  await step('export: secadmin approves it in the console', async () => {
    if (!exportRequested) return { skipped: 'no request' }
    await login('secadmin')
    secToken = await page.evaluate(() => sessionStorage.getItem('anju.token'))
    const list = await api('GET', '/exports', null, secToken)
    need(list.status === 200, `the approver cannot list export requests: GET /exports ${list.status} ${JSON.stringify(list.body)} (server: the list needs export.request, secadmin holds export.approve)`)
    await nav('/admin/exports')
    await page.locator('[data-test=approve]').first().click()
    await prompt('同意 / approved')
    await page.locator('[data-test=exports] [data-state=approved]').first().waitFor()
    await shot(page, '14-exports')
  })
  await step('export: the requester downloads the approved file once (passphrase)', async () => {
    if (!exportRequested) return { skipped: 'no request' }
    const mine = await api('GET', '/exports', null, await (async () => {
      await login('op1')
      return page.evaluate(() => sessionStorage.getItem('anju.token'))
    })())
    const req = (mine.body.items || [])[0]
    need(req, 'no export request listed for op1')
    if (req.state === 'pending') {
      // The console approval above could not run: approve through the API as secadmin, so
      // the download path is still exercised (reported in the log).
      log('approving the export through the API (the console approval step failed)')
      const r = await api('POST', `/exports/${req.id}/approve`, { note: 'API' }, secToken)
      need(r.status === 200, `approve via API: ${r.status} ${JSON.stringify(r.body)}`)
    }
    await nav('/admin/exports')
    const dl = page.waitForEvent('download')
    await page.locator('[data-test=download]').first().click()
    await prompt('Passphrase-2026')
    const file = await dl
    const saved = path.join(out, 'export.anjx')
    await file.saveAs(saved)
    need(fs.statSync(saved).size > 0, 'empty export file')
    await page.locator('[data-test=exports] [data-state=downloaded]').first().waitFor()
  })

  // ---- 8b. bulk deletion with approval (R4.2.1.1), retention settings and keys
  await step('bulk deletion and photo export: operator requests both from the archives page; secadmin approves the deletion; face data gone', async () => {
    if (!has('post', '/deletions') || !haveAccounts) return { skipped: 'server has no bulk deletion API' }
    await login('op1')
    const opToken = await page.evaluate(() => sessionStorage.getItem('anju.token'))
    const made = await api('POST', '/persons', { code: 'DEL-1', name: '待删除' }, opToken)
    need(made.status === 201, `create person: ${made.status} ${JSON.stringify(made.body)}`)
    await nav('/archives')
    await page.fill('input[name=q]', 'DEL-1')
    await page.keyboard.press('Enter')
    const row = page.locator('[data-test=persons] tr:has-text("DEL-1")')
    await row.waitFor()
    await row.locator('.el-checkbox').click()
    await page.click('[data-test=bulk-delete]')
    await page.fill('textarea[name=bulk_reason]', '测试批量删除 / bulk deletion test')
    await page.click('[data-test=bulk-submit]')
    await page.locator('.el-message--success').first().waitFor()
    need(page.url().includes('/archives'), 'selecting a row opened the person instead')
    // A photo export of everyone goes the same way (approval, then an encrypted tar).
    await page.click('[data-test=export-photos]')
    await page.locator('.el-dialog label:has-text("全部人员")').click()
    await page.fill('textarea[name=bulk_reason]', '移交核查 / handover check')
    await page.click('[data-test=bulk-submit]')
    await page.locator('[data-test=bulk-submit]').waitFor({ state: 'hidden' })  // closes on success
    const mine = await api('GET', '/exports', null, opToken)
    const photoReq = (mine.body.items || []).find((e) => e.kind === 'photos')
    need(photoReq && photoReq.state === 'pending' && JSON.stringify(photoReq.filter) === '{}', `photo export request: ${JSON.stringify(mine.body)}`)
    await login('secadmin')
    await nav('/admin/exports?tab=deletions')
    await page.locator('[data-test=deletions] [data-state=pending]').first().waitFor()
    await page.locator('[data-test=approve-deletion]').first().click()
    await prompt('同意销毁 / approved')
    await page.locator('[data-test=deletions] [data-state=done]').first().waitFor()
    await shot(page, '14b-deletions')
    const list = await api('GET', '/deletions', null, await page.evaluate(() => sessionStorage.getItem('anju.token')))
    const d = (list.body.items || [])[0]
    need(d && d.state === 'done' && d.deleted === 1 && d.persons[0] === 'DEL-1', `deletion: ${JSON.stringify(d)}`)
  })

  await step('keys: secadmin sees the key ids and rotates the master key in the console', async () => {
    if (!has('get', '/keys') || !haveAccounts) return { skipped: 'server has no keys API' }
    // Still secadmin after the approval above: a new login would wait for the next TOTP window.
    if (currentUser !== 'secadmin') await login('secadmin')
    await nav('/admin/maintenance')
    const id = page.locator('[data-test=master-id]')
    await id.waitFor()
    const before = (await id.innerText()).trim()
    need(/^[0-9a-f]{16}$/.test(before), `master id shown: ${before}`)
    await page.click('[data-test=rotate]')
    await prompt('年度轮换 / yearly')
    await page.waitForFunction((b) => {
      const e = document.querySelector('[data-test=master-id]')
      return e && e.textContent.trim() !== b
    }, before)
    await shot(page, '14d-keys')
    const r = await api('GET', '/keys', null, await page.evaluate(() => sessionStorage.getItem('anju.token')))
    need(r.body.master.id !== before && r.body.class_keys.every((k) => k.master_id === r.body.master.id), `after rotation: ${JSON.stringify(r.body)}`)
  })

  await step('maintenance: retention periods read from the server, changed and kept', async () => {
    if (!has('get', '/admin/retention') || !haveAccounts) return { skipped: 'server has no retention settings API' }
    await login('admin')
    await nav('/admin/maintenance')
    const input = page.locator('input[name=snapshot_months]')
    await input.waitFor()
    need((await input.inputValue()) === '12', `snapshot months shown: ${await input.inputValue()}`)
    await input.fill('6')
    await input.press('Tab')
    await page.click('[data-test=save-retention]')
    await page.locator('.el-message--success').first().waitFor()
    await page.reload()
    await page.locator('input[name=snapshot_months]').waitFor()
    need((await page.locator('input[name=snapshot_months]').inputValue()) === '6', 'the saved period was not read back')
    need((await page.locator('[data-test=retention-source]').innerText()).includes('admin'), 'who changed it is not shown')
    await shot(page, '14c-retention')
  })

  // ---- 9. a viewer finds the admin pages refused
  await step('viewer: no administration menu, admin pages refused (console and server)', async () => {
    if (!haveAccounts) return { skipped: 'server has no user accounts yet' }
    await login('viewer1')
    need(!(await page.locator('.aside >> text=系统管理').count()), 'viewer sees the administration menu')
    for (const hash of ['/admin/users', '/admin/audit', '/admin/exports', '/admin/maintenance', '/enrol']) {
      await nav(hash)
      await page.locator('[data-test=forbidden]').waitFor()
    }
    await shot(page, '15-viewer-refused')
    const token = await page.evaluate(() => sessionStorage.getItem('anju.token'))
    for (const [m, p] of [['GET', '/users'], ['GET', '/audit'], ['POST', '/devices']]) {
      const r = await api(m, p, m === 'POST' ? { name: 'x' } : undefined, token)
      need(r.status === 403, `${m} ${p} as viewer: ${r.status}`)
    }
    await nav('/archives')
    await page.locator(`td:has-text("${tenantCode}")`).waitFor()
    need(!(await page.locator('[data-test=new-person]').count()), 'viewer sees the move-in button')
  })

  // ---- 10. audit viewer with chain verification (auditadmin)
  await step('auditadmin: audit log and chain verification', async () => {
    if (!haveAccounts || !initial.auditadmin) return { skipped: 'no audit administrator' }
    await login('auditadmin')
    await nav('/admin/audit')
    await page.locator('td').first().waitFor()
    if (!has('post', '/audit/verify')) return { skipped: 'no POST /audit/verify on the server' }
    await page.click('[data-test=verify]')
    await page.locator('[data-test=verify-result]').waitFor()
    need((await page.locator('[data-test=verify-result]').innerText()).includes('完整'), 'chain not reported intact')
    await shot(page, '16-audit')
  })

  // ---- 10b. every role's pages at 1366×768: menu, home, no refusals, no raw codes, layout
  // What must never be rendered: developer text, permission errors, raw enum values (a cell
  // or tag holding only one), JSON. Checked on every page each role can open.
  const FORBIDDEN_TEXT = [/forbidden: needs permission/i, /needs permission/i, /统计接口未提供/, /数据由通行记录计算/,
    /\[object Object\]/, /\bundefined\b/, /\bNaN\b/, /\bstranger new\b/, /"bytes_freed"/, /\{"[a-z_]+":/]
  const RAW_VALUES = new Set(['active', 'moved_out', 'stranger', 'new', 'acknowledged', 'closed', 'open', 'deny', 'spoof',
    'uncertain', 'accept', 'queued', 'done', 'rejected', 'no_face', 'failed', 'unrecognised', 'pending', 'revoked',
    'access', 'alarm', 'door_event', 'tenant', 'family', 'critical', 'major', 'minor', 'warning', 'online', 'offline',
    'approved', 'downloaded', 'biometrics', 'archives', 'moved_in', 'enrolled', 'exit_button', 'door_opened'])
  async function pageProblems(p) {
    return p.evaluate(({ patterns, raw }) => {
      const out = []
      const text = document.querySelector('#app').innerText
      for (const src of patterns) {
        const m = text.match(new RegExp(src.source, src.flags))
        if (m) out.push(`text "${m[0]}"`)
      }
      for (const el of document.querySelectorAll('.el-table td .cell, .el-tag, .el-descriptions__content, .stat, button, .el-dropdown-menu__item')) {
        const v = el.innerText.trim()
        if (raw.includes(v)) out.push(`raw value "${v}"`)
        if (/^t-\d+$/.test(v)) out.push(`template id "${v}" as a label`)
      }
      if (document.querySelector('[data-test=forbidden]')) out.push('无权访问 page')
      // 1366×768: nothing wider than the window, no table column hidden under a fixed one.
      if (document.scrollingElement.scrollWidth > window.innerWidth + 1) out.push(`page ${document.scrollingElement.scrollWidth} px wide`)
      for (const w of document.querySelectorAll('.el-table__body-wrapper .el-scrollbar__wrap')) {
        if (w.scrollWidth > w.clientWidth + 1) out.push(`table scrolls sideways (${w.scrollWidth} > ${w.clientWidth} px)`)
      }
      return out
    }, { patterns: FORBIDDEN_TEXT.map((r) => ({ source: r.source, flags: r.flags })), raw: [...RAW_VALUES] })
  }

  const roleTour = {} // role → { home, pages: { nav: problems } }
  const expectedHome = { op1: '/dashboard', admin: '/dashboard', secadmin: '/admin/exports', auditadmin: '/admin/audit', viewer1: '/dashboard' }
  for (const [user, role] of [['op1', 'operator'], ['admin', 'sysadmin'], ['secadmin', 'secadmin'], ['auditadmin', 'auditadmin'], ['viewer1', 'viewer']]) {
    await step(`${role} (${user}): home page, every menu page at 1366×768 with a screenshot, no refusal, no raw value`, async () => {
      if (!haveAccounts || !initial[user === 'op1' || user === 'viewer1' ? 'admin' : user]) return { skipped: 'no accounts' }
      await login(user)
      await page.waitForURL(/#\/(dashboard|admin)/, { timeout: 10000 }).catch(() => {})
      const home = new URL(page.url()).hash.replace(/^#/, '').split('?')[0]
      const tour = (roleTour[role] = { home, pages: {} })
      need(home === expectedHome[user], `${role} starts on ${home}, expected ${expectedHome[user]}`)
      const navs = await page.locator('.aside [data-nav]').evaluateAll((els) => els.map((e) => e.getAttribute('data-nav')))
      tour.menu = navs
      if (role === 'sysadmin') {
        for (const n of ['archives', 'events', 'alarms', 'enrol', 'places']) need(!navs.includes(n), `sysadmin's menu shows ${n}`)
      }
      const denied = []
      const onResponse = (r) => {
        if (r.url().includes('/api/v1/') && r.status() === 403) denied.push(`${r.request().method()} ${r.url().replace(base, '')}`)
      }
      page.on('response', onResponse)
      const problems = []
      try {
        const hrefs = { dashboard: '/dashboard', archives: '/archives', places: '/places', enrol: '/enrol', devices: '/devices',
          cameras: '/cameras', events: '/events', alarms: '/alarms', stats: '/stats', users: '/admin/users', audit: '/admin/audit',
          exports: '/admin/exports', maintenance: '/admin/maintenance' }
        for (const n of navs) {
          denied.length = 0
          await nav(hrefs[n])
          await page.waitForLoadState('networkidle', { timeout: 5000 }).catch(() => {})
          await page.waitForTimeout(800) // charts, thumbnails, names filled in
          if (n === 'cameras') {
            const row = page.locator('[data-test=cameras] .el-table__row').first()
            if (await row.count()) {
              await row.click()
              await page.waitForTimeout(1200)
            }
          }
          await page.screenshot({ path: path.join(shots, `role-${role}-${n}.png`) })
          const found = await pageProblems(page)
          if (denied.length) found.push(`403 from ${[...new Set(denied)].join(', ')}`)
          if (n === 'stats') {
            // Both rows of charts inside the window.
            const bottoms = await page.locator('canvas').evaluateAll((cs) => cs.map((c) => c.getBoundingClientRect().bottom))
            if (bottoms.length < 4 || bottoms.some((b) => b > 768)) found.push(`charts end at ${bottoms.map(Math.round).join(', ')} px`)
          }
          if (['archives', 'events', 'alarms', 'cameras'].includes(n) && role === 'operator') {
            // Faces beside the rows: every thumbnail shown has decoded.
            const thumbs = page.locator('img[data-test=thumb]')
            await waitFor(async () => (await thumbs.count()) > 0, 10000, `thumbnails on ${n}`).catch(() => {})
            const widths = await thumbs.evaluateAll((imgs) => imgs.map((i) => (i.complete ? i.naturalWidth : -1)))
            tour.pages[`${n}_thumbs`] = widths
            if (!widths.length) found.push('no face thumbnail')
            if (widths.some((w) => w === 0)) found.push('a thumbnail that does not decode')
          }
          if (n === 'dashboard' && (role === 'operator' || role === 'sysadmin')) {
            const dev = (await page.locator('[data-test=devices-online]').innerText()).trim()
            if (/\/ 0$/.test(dev)) found.push(`设备在线 ${dev}`)
            if (!(await page.locator('[data-test=captures-today]').count())) found.push("no today's captures")
          }
          tour.pages[n] = found
          if (found.length) problems.push(`${n}: ${found.join('; ')}`)
        }
      } finally {
        page.off('response', onResponse)
      }
      need(!problems.length, problems.join(' | '))
    })
  }
  timings.role_tour = roleTour
  // Step 11 ends the session of the audit page.
  if (haveAccounts && initial.auditadmin) {
    await login('auditadmin')
    await nav('/admin/audit')
  }

  // ---- 11. session end: back to the login page with a message
  await step('session ended on the server: next action returns to login with a message', async () => {
    if (!authApi) return { skipped: 'token login has no session' }
    const token = await page.evaluate(() => sessionStorage.getItem('anju.token'))
    const r = await api('POST', '/auth/logout', {}, token)
    need(r.status === 200, `logout ${r.status}`)
    await page.reload() // the audit page again: its first API call meets the 401
    await page.locator('[data-test=login]').waitFor()
    const text = await page.locator('body').innerText()
    need(text.includes('会话已超时') || text.includes('登录'), 'no login page')
    timings.session_end_message = text.includes('会话已超时') ? '会话已超时' : 'login page without message'
    await shot(page, '17-session-expired')
  })

  // ---- 12. an integration token (operator + installer) logs in from the login page's link
  await step('integration token login: the pages of its roles', async () => {
    if (!authApi) return { skipped: 'the whole run used the token' }
    const c = await browser.newContext(ctxOpts)
    const tp = await c.newPage()
    await tp.goto(`${base}/`)
    await tp.locator('text=使用接口令牌登录').click()
    await tp.fill('input[name=token]', adminToken)
    await tp.click('[data-test=login]')
    await tp.locator('.aside').waitFor()
    const menu = await tp.locator('.aside').innerText()
    need(menu.includes('一人一档') && menu.includes('设备与门'), `menu: ${menu}`)
    need(!menu.includes('审计日志'), 'the token sees the audit log')
    await c.close()
  })

  // ---- 13. the default HTTPS server (self-signed certificate) serves the console too
  await step('HTTPS (the default): the login page over the self-signed certificate', async () => {
    if (!plain) return { skipped: 'the server has no --plain-http: the whole run was over its default transport' }
    let log2 = ''
    const p = spawn(path.join(bin, 'anju-server'), ['--data-dir', path.join(tmp, 'server-tls'), '--listen', '127.0.0.1:0'],
      { env: { ...process.env, ANJU_CONSOLE_DIR: consoleDir }, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(p)
    p.stdout.on('data', (d) => (log2 += d))
    const url = await waitFor(() => (log2.match(/(https:\/\/127\.0\.0\.1:\d+)/) || [])[1], 60000, 'the HTTPS URL')
    const c = await browser.newContext(ctxOpts)
    const tp = await c.newPage()
    await waitFor(async () => (await tp.goto(`${url}/`)).ok(), 30000, 'the console over HTTPS')
    await tp.locator('[data-test=login]').waitFor()
    need((await tp.locator('body').innerText()).includes('登录'), 'no 登录 over HTTPS')
    await c.close()
  })

  timings.page_errors = consoleErrors
  fs.writeFileSync(path.join(out, 'api-errors.txt'), apiErrors.join('\n') + '\n')
  await browser.close()
}

let failed = false
try {
  await main()
} catch (e) {
  results.push({ name: 'setup', status: 'FAIL', why: String(e && e.stack ? e.stack : e) })
  log(`FAIL setup: ${e && e.message}`)
} finally {
  for (const c of children.reverse()) c.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({ results, timings }, null, 2))
  failed = results.some((r) => r.status === 'FAIL')
  log('----')
  for (const r of results) log(`${r.status.padEnd(7)} ${r.name}${r.why && r.status !== 'PASS' ? `  — ${r.why.split('\n')[0]}` : ''}`)
  log(`timings: ${JSON.stringify(timings)}`)
  log(`screenshots: ${shots}`)
}
process.exit(failed ? 1 : 0)
