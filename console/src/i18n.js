// Chinese first (the default), English at runtime from the header switch; the choice is kept.
import { createI18n } from 'vue-i18n'

const zh = {
  app: { title: '安居门禁管理平台', short: '安居', logout: '退出登录', lang: 'English', password: '修改密码' },
  nav: {
    dashboard: '首页概览', archives: '一人一档', places: '楼宇房屋', enrol: '人脸登记', devices: '设备与门', cameras: '抓拍摄像机',
    events: '通行记录', alarms: '告警处理', stats: '统计报表', admin: '系统管理', users: '用户与角色',
    audit: '审计日志', exports: '导出审批', maintenance: '数据保留与备份',
  },
  common: {
    search: '搜索', reset: '重置', create: '新建', save: '保存', cancel: '取消', confirm: '确定', delete: '删除',
    edit: '编辑', view: '查看', refresh: '刷新', actions: '操作', name: '名称', time: '时间', state: '状态',
    yes: '是', no: '否', none: '无', total: '共 {n} 条', loading: '加载中…', saved: '已保存', done: '完成',
    failed: '失败', note: '备注', download: '下载', from: '开始', to: '结束', all: '全部', back: '返回',
    notAvailable: '服务器尚未提供此功能', forbidden: '无权访问此页面', details: '详情',
  },
  login: {
    title: '登录', username: '用户名', password: '密码', totp: '动态验证码（6 位）', submit: '登录',
    totpHint: '管理员账号需要输入身份验证器上的动态验证码', wrong: '用户名或密码错误',
    locked: '账号已锁定，请于 {until} 后再试', expired: '会话已超时，请重新登录', loggedOut: '已退出登录',
    tokenMode: '使用接口令牌登录', passwordMode: '使用用户名密码登录', token: '接口令牌',
    noAuth: '服务器尚未启用用户登录，请使用接口令牌（数据目录中的 admin.token）',
  },
  password: {
    title: '修改密码', forced: '首次登录必须修改初始密码', old: '当前密码', new: '新密码', repeat: '确认新密码',
    policy: '至少 8 位，包含大写字母、小写字母、数字、符号中的 3 类，不得与最近 5 次相同',
    mismatch: '两次输入的新密码不一致', changed: '密码已修改', totpTitle: '双因素认证（TOTP）',
    totpSetup: '生成密钥', totpConfirm: '确认绑定', totpCode: '验证码', totpSecret: '密钥',
    totpDone: '已绑定身份验证器', totpRequired: '管理员账号必须先绑定身份验证器',
  },
  dash: {
    todayOpen: '今日通行', todayDenied: '今日拒绝', alarmsOpen: '未处理告警', devicesOnline: '设备在线',
    byHour: '今日每小时进出', byDoor: '今日按楼栋 / 门进出', devices: '设备在线状态', backlog: '设备待上传记录',
    alarmsByType: '未处理告警类型', online: '在线', offline: '离线', entries: '进入', exits: '外出', denied: '拒绝',
    partial: '仅统计最近 {n} 条记录', noReports: '统计接口未提供，数据由通行记录计算',
  },
  person: {
    code: '编号', name: '姓名', phone: '电话', idNumber: '身份证号', minor: '未成年', status: '状态',
    active: '在住', moved_out: '已迁出', movedIn: '入住时间', movedOut: '迁出时间', search: '姓名 / 编号 / 电话 / 房号',
    create: '入住登记', household: '住户', role: '身份', room: '房间', consent: '授权同意', photos: '人脸照片',
    credentials: '凭证', groups: '通行权限组', history: '变更记录', moveOut: '迁出', moveOutConfirm:
      '迁出后将删除此人的人脸照片、特征码、凭证和权限，档案保留。确定迁出？', batch: '批量导入',
    consentActive: '有效授权', consentNone: '无有效授权', addConsent: '登记授权', withdraw: '撤回授权',
    withdrawConfirm: '撤回授权将删除人脸照片与特征码。确定撤回？', noticeVersion: '告知书版本', purpose: '用途',
    operator: '经办人', evidence: '证明材料', guardian: '监护人', guardianRelation: '与本人关系',
    granted: '授权时间', withdrawn: '撤回时间', showPhoto: '显示照片', enrol: '登记人脸', addCredential: '添加凭证',
    kind: '类型', card: '门卡', pin: '密码', qr: '二维码', cardNumber: '卡号', validFrom: '生效', validUntil: '失效',
    qrOnce: '二维码令牌仅显示一次：', action: '操作', actor: '操作人', tenant: '承租人', family: '家属',
    carer: '护理人员', staff: '工作人员', visitor: '访客', reveal: '显示完整证件号', quality: '质量',
    roomSearchHint: '按房号搜索：在楼宇房屋中找到房间', template: '模板',
    phoneSearch: '电话（后 4 位或完整号码）', faceSearch: '以图搜人', score: '相似度', faceMatch: '达到阈值',
    faceNoMatch: '低于阈值', faceNone: '人脸库为空', faceThreshold: '比对阈值 {t} · 服务器耗时 {ms} 毫秒',
    faceTooLarge: '图片超过 8 MiB',
  },
  places: {
    sites: '小区', buildings: '楼栋', units: '单元', rooms: '房间', households: '住户', address: '地址',
    newSite: '新建小区', newBuilding: '新建楼栋', newUnit: '新建单元', newRoom: '新建房间', newHousehold: '新建住户',
    members: '住户成员', pick: '请选择上一级', groups: '通行权限组', newGroup: '新建权限组', doors: '门',
    setDoors: '设置门', addMembers: '添加成员', membersHint: '人员编号，逗号分隔',
  },
  enrol: {
    title: '人脸登记', pickPerson: '选择人员', step1: '授权同意', step2: '采集照片', step3: '质量检查',
    consentFirst: '登记人脸前必须先取得本人（未成年人为监护人）的授权同意', upload: '上传照片', camera: '摄像头拍照',
    startCamera: '打开摄像头', capture: '拍照', submit: '提交登记', accepted: '登记成功', rejected: '照片未通过质量检查',
    duplicate: '此人脸与已登记人员相似', acceptDuplicate: '确认不是同一人，仍然登记', noCamera: '无法打开摄像头',
    elapsed: '服务器耗时 {ms} 毫秒', reasons: {
      no_face: '未检测到人脸', several_faces: '画面中有多张人脸', too_small: '人脸太小，请靠近',
      blurred: '照片模糊', too_dark: '光线太暗', too_bright: '光线太亮', not_frontal: '请正对镜头',
      eyes_closed: '请睁开眼睛', spoof: '疑似翻拍或打印照片', bad_image: '不是有效的图片文件',
      consent_required: '尚无有效授权', unavailable: '服务器未安装人脸模型',
    },
    checkOk: '质量检查通过，可以登记', checkBad: '质量检查未通过',
    q: { size: '人脸', sharpness: '清晰度', brightness: '亮度', yaw: '左右', pitch: '俯仰', eyes: '睁眼', liveness: '活体' },
  },
  cameras: {
    place: '位置', live: '实时画面', noLive: '暂无实时画面（摄像机未发送预览）', recent: '最近抓拍', outcome: '结果',
    person: '人员', capture: '抓拍详情', clip: '抓拍片段', frames: '帧', play: '播放', pause: '暂停',
    noClip: '此抓拍没有片段', mode: { mjpeg: '实时流', polling: '轮询' },
  },
  devices: {
    create: '添加设备', doors: '门数', code: '注册码', codeHint: '在终端上输入此一次性注册码（{h} 前有效）',
    newCode: '重新生成注册码', revoke: '停用', revokeConfirm: '停用后该设备将无法连接。确定？', online: '在线',
    lastSeen: '最后在线', version: '软件版本', gallery: '人脸库版本', backlog: '待上传', pending: '待执行命令',
    open: '远程开门', notice: '发送通知', sync: '立即同步', noticeText: '通知内容', door: '门号', sent: '命令已下发',
    commands: '命令记录', status: '状态', site: '所属小区', setSite: '设置小区', noSite: '未指定',
  },
  events: {
    live: '实时', paused: '已暂停', stream: '实时推送', polling: '轮询刷新', device: '设备', door: '门',
    person: '人员', kind: '类型', decision: '结果', score: '相似度', snapshot: '抓拍', export: '导出 CSV',
    exportRequest: '申请导出', reason: '导出事由', passphrase: '文件口令', requested: '已提交导出申请，待他人审批',
    access: '通行', alarm: '告警', door_event: '门事件', open: '开门', deny: '拒绝', stranger: '陌生人',
    spoof: '假体攻击', uncertain: '不确定', received: '接收时间', newRecords: '新记录 {n} 条',
  },
  alarms: {
    type: '告警类型', severity: '级别', ack: '确认', close: '关闭', new: '未处理', acknowledged: '已确认',
    closed: '已关闭', handledBy: '处理人', notePrompt: '处理说明', critical: '紧急', major: '重要', minor: '一般',
    types: {
      stranger: '陌生人', spoof: '假体攻击', tailgating: '尾随', forced_open: '强行开门', held_open: '门未关',
      tamper: '防拆', fire_alarm: '消防', emergency: '紧急', fault: '故障', outbox_near_full: '存储将满',
      outbox_full: '存储已满',
    },
  },
  stats: {
    range: '时间范围', perHour: '每小时通行', perDay: '每日通行', perDoor: '按门 / 设备', strangers: '陌生人（按日）',
    download: '下载统计表', scanned: '已统计 {n} 条记录', limit: '最多统计 {n} 条',
  },
  users: {
    username: '用户名', display: '姓名', roles: '角色', sites: '管辖小区', disabled: '已停用', locked: '锁定中',
    create: '新建用户', initialPassword: '初始密码', setRoles: '分配角色', disable: '停用', enable: '启用',
    unlock: '解锁', resetPassword: '重置密码', roleNames: {
      sysadmin: '系统管理员', secadmin: '安全管理员', auditadmin: '审计管理员', operator: '物业操作员', viewer: '查看员',
    }, oneAdmin: '三种管理员角色最多只能选一种',
  },
  audit: {
    verify: '校验审计链', ok: '审计链完整，已校验 {n} 条', bad: '审计链被篡改！第一条异常记录：{id}',
    actor: '操作人', action: '操作', object: '对象', detail: '详情', source: '来源',
  },
  exports: {
    kind: '内容', requester: '申请人', reason: '事由', approve: '批准', reject: '驳回', pending: '待审批',
    approved: '已批准', rejected: '已驳回', downloaded: '已下载', persons: '人员档案', events: '通行记录',
    approver: '审批人', filter: '条件', photos: '人脸照片', exportsTab: '导出申请', deletionsTab: '批量删除申请',
    biometrics: '删除人脸数据', archives: '销毁档案', count: '人数', done: '已执行', deleted: '已删除 {n} 人、{p} 张照片',
    approveDeletion: '批准后将立即删除且不可恢复，确定批准？',
  },
  deletion: {
    request: '申请批量删除', exportPhotos: '导出人脸照片', selected: '已选 {n} 人', scope: '范围', scopeSelected: '所选人员',
    scopeMovedOut: '全部已迁出人员', scopeAll: '全部人员（含在住）', kind: '删除内容', reason: '事由', submitted: '已提交，待他人审批',
    kindHint: '删除人脸数据：照片与特征码，档案保留；销毁档案：同时抹除姓名、电话、身份证号与履历，仅保留编码',
  },
  maint: {
    retention: '数据保留', runRetention: '立即执行保留清理', report: '清理结果', backup: '在线备份',
    backupFile: '备份文件路径（服务器上的绝对路径）', runBackup: '开始备份', verifyBackup: '校验备份',
    retentionHint: '保留期限在服务器配置文件中设置：抓拍 {s} 个月、记录 {e} 个月（默认值）',
    keys: '密钥', keysHint: '密钥轮换请在服务器上执行命令（见 docs/crypto.md）',
    snapshot_months: '抓拍与快照', video_months: '录像索引', event_months: '通行与告警记录', quarantine_months: '隔离的上传',
    policy: '安全策略（服务器配置）', months: '个月', fromConfig: '当前为服务器配置文件中的设置', setBy: '{who} 于 {at} 修改', lastRun: '上次清理：{at}（{who}）',
    master: '主密钥', sm2: '服务器 SM2 签名密钥', tls: 'TLS 证书指纹', backupKey: '备份密钥',
    backupKeyHint: '不受主密钥封装，请离机保存', lastRotation: '上次轮换', keyFile: '文件', purpose: '用途',
    keyId: '密钥标识', wrappedBy: '封装主密钥', rotate: '轮换主密钥',
    rotateHint: '生成新主密钥并重新封装各类数据密钥；服务不中断，已加密数据保持可读',
    rotateConfirm: '确定轮换主密钥？完成后请将新的 master.key 离机保存。', rotated: '主密钥已轮换：{id}',
  },
  errors: {
    forbidden: '无权限', session_expired: '会话已超时', conflict: '操作冲突', not_found: '不存在',
    bad_request: '请求有误', network: '无法连接服务器',
  },
}

const en = {
  app: { title: 'anju access control console', short: 'anju', logout: 'Log out', lang: '中文', password: 'Change password' },
  nav: {
    dashboard: 'Dashboard', archives: 'Archives', places: 'Buildings', enrol: 'Face enrolment', devices: 'Devices', cameras: 'Snapshot cameras',
    events: 'Access records', alarms: 'Alarms', stats: 'Statistics', admin: 'Administration', users: 'Users & roles',
    audit: 'Audit log', exports: 'Export approvals', maintenance: 'Retention & backup',
  },
  common: {
    search: 'Search', reset: 'Reset', create: 'New', save: 'Save', cancel: 'Cancel', confirm: 'OK', delete: 'Delete',
    edit: 'Edit', view: 'View', refresh: 'Refresh', actions: 'Actions', name: 'Name', time: 'Time', state: 'State',
    yes: 'Yes', no: 'No', none: 'None', total: '{n} in all', loading: 'Loading…', saved: 'Saved', done: 'Done',
    failed: 'Failed', note: 'Note', download: 'Download', from: 'From', to: 'To', all: 'All', back: 'Back',
    notAvailable: 'The server does not offer this yet', forbidden: 'You may not open this page', details: 'Details',
  },
  login: {
    title: 'Log in', username: 'User name', password: 'Password', totp: 'One-time code (6 digits)', submit: 'Log in',
    totpHint: 'Administrator accounts need the code from the authenticator app', wrong: 'Wrong user name or password',
    locked: 'Account locked until {until}', expired: 'Your session expired, please log in again', loggedOut: 'Logged out',
    tokenMode: 'Log in with an API token', passwordMode: 'Log in with user name and password', token: 'API token',
    noAuth: 'The server has no user login yet: use the API token (admin.token in its data directory)',
  },
  password: {
    title: 'Change password', forced: 'You must change the initial password at first login', old: 'Current password',
    new: 'New password', repeat: 'Repeat new password',
    policy: 'At least 8 characters from 3 of: upper case, lower case, digits, symbols; not one of the last 5',
    mismatch: 'The new passwords differ', changed: 'Password changed', totpTitle: 'Two-factor authentication (TOTP)',
    totpSetup: 'Create secret', totpConfirm: 'Confirm', totpCode: 'Code', totpSecret: 'Secret',
    totpDone: 'Authenticator enrolled', totpRequired: 'Administrator accounts must enrol an authenticator first',
  },
  dash: {
    todayOpen: 'Entries today', todayDenied: 'Refused today', alarmsOpen: 'Open alarms', devicesOnline: 'Devices online',
    byHour: 'Entries and exits per hour today', byDoor: 'Today per building / door', devices: 'Devices online',
    backlog: 'Records waiting on devices', alarmsByType: 'Open alarms by type', online: 'Online', offline: 'Offline',
    entries: 'Entries', exits: 'Exits', denied: 'Refused', partial: 'Only the latest {n} records counted',
    noReports: 'No report API: figures computed from the access records',
  },
  person: {
    code: 'Code', name: 'Name', phone: 'Phone', idNumber: 'ID number', minor: 'Minor', status: 'Status',
    active: 'Resident', moved_out: 'Moved out', movedIn: 'Moved in', movedOut: 'Moved out', search: 'Name / code / phone / room',
    create: 'Move in', household: 'Household', role: 'Role', room: 'Room', consent: 'Consent', photos: 'Face photos',
    credentials: 'Credentials', groups: 'Access groups', history: 'History', moveOut: 'Move out',
    moveOutConfirm: 'Moving out deletes the face photos, feature codes, credentials and access; the archive stays. Move out?',
    batch: 'Batch import', consentActive: 'Consent given', consentNone: 'No consent', addConsent: 'Record consent',
    withdraw: 'Withdraw consent', withdrawConfirm: 'Withdrawing deletes the face photos and feature codes. Withdraw?',
    noticeVersion: 'Notice version', purpose: 'Purpose', operator: 'Operator', evidence: 'Evidence', guardian: 'Guardian',
    guardianRelation: 'Relation', granted: 'Granted', withdrawn: 'Withdrawn', showPhoto: 'Show photo', enrol: 'Enrol face',
    addCredential: 'Add credential', kind: 'Kind', card: 'Card', pin: 'PIN', qr: 'QR code', cardNumber: 'Card number',
    validFrom: 'Valid from', validUntil: 'Valid until', qrOnce: 'The QR token is shown only once:', action: 'Action',
    actor: 'By', tenant: 'Tenant', family: 'Family', carer: 'Carer', staff: 'Staff', visitor: 'Visitor',
    reveal: 'Show the full ID number', quality: 'Quality', roomSearchHint: 'By room: find the room under Buildings',
    template: 'Template', phoneSearch: 'Phone (last 4 digits or whole number)', faceSearch: 'Search by photo',
    score: 'Score', faceMatch: 'Above threshold', faceNoMatch: 'Below threshold', faceNone: 'No enrolled faces',
    faceThreshold: 'Match threshold {t} · server time {ms} ms', faceTooLarge: 'Image larger than 8 MiB',
  },
  places: {
    sites: 'Sites', buildings: 'Buildings', units: 'Units', rooms: 'Rooms', households: 'Households', address: 'Address',
    newSite: 'New site', newBuilding: 'New building', newUnit: 'New unit', newRoom: 'New room', newHousehold: 'New household',
    members: 'Members', pick: 'Choose the level above first', groups: 'Access groups', newGroup: 'New access group',
    doors: 'Doors', setDoors: 'Set doors', addMembers: 'Add members', membersHint: 'Identity codes, comma separated',
  },
  enrol: {
    title: 'Face enrolment', pickPerson: 'Choose a person', step1: 'Consent', step2: 'Photo', step3: 'Quality check',
    consentFirst: 'Record the consent of the person (or the guardian of a minor) before any photo is taken',
    upload: 'Upload a photo', camera: 'Camera', startCamera: 'Start camera', capture: 'Take photo', submit: 'Enrol',
    accepted: 'Enrolled', rejected: 'The photo failed the quality check', duplicate: 'This face resembles an enrolled person',
    acceptDuplicate: 'Not the same person: enrol anyway', noCamera: 'Cannot open the camera',
    elapsed: 'Server time {ms} ms', reasons: {
      no_face: 'No face found', several_faces: 'Several faces in the picture', too_small: 'Face too small: come closer',
      blurred: 'Blurred', too_dark: 'Too dark', too_bright: 'Too bright', not_frontal: 'Look straight at the camera',
      eyes_closed: 'Eyes closed', spoof: 'Looks like a printed or re-photographed picture', bad_image: 'Not an image file',
      consent_required: 'No standing consent', unavailable: 'No face models on the server',
    },
    checkOk: 'Quality check passed: ready to enrol', checkBad: 'Quality check failed',
    q: { size: 'Face', sharpness: 'Sharpness', brightness: 'Brightness', yaw: 'Yaw', pitch: 'Pitch', eyes: 'Eyes open', liveness: 'Liveness' },
  },
  cameras: {
    place: 'Place', live: 'Live view', noLive: 'No live view (the camera sends no preview)', recent: 'Recent captures',
    outcome: 'Outcome', person: 'Person', capture: 'Capture', clip: 'Clip', frames: 'frames', play: 'Play', pause: 'Pause',
    noClip: 'This capture has no clip', mode: { mjpeg: 'stream', polling: 'polling' },
  },
  devices: {
    create: 'Add device', doors: 'Doors', code: 'Enrolment code', codeHint: 'Enter this one-time code on the terminal (valid until {h})',
    newCode: 'New enrolment code', revoke: 'Revoke', revokeConfirm: 'A revoked device can no longer connect. Revoke?',
    online: 'Online', lastSeen: 'Last seen', version: 'Software', gallery: 'Gallery version', backlog: 'Backlog',
    pending: 'Pending commands', open: 'Open door', notice: 'Send notice', sync: 'Sync now', noticeText: 'Notice text',
    door: 'Door', sent: 'Command queued', commands: 'Commands', status: 'Status', site: 'Site',
    setSite: 'Set site', noSite: 'None',
  },
  events: {
    live: 'Live', paused: 'Paused', stream: 'streaming', polling: 'polling', device: 'Device', door: 'Door',
    person: 'Person', kind: 'Kind', decision: 'Decision', score: 'Score', snapshot: 'Snapshot', export: 'Export CSV',
    exportRequest: 'Request export', reason: 'Reason', passphrase: 'File passphrase',
    requested: 'Export requested; another user must approve it', access: 'Access', alarm: 'Alarm', door_event: 'Door event',
    open: 'Opened', deny: 'Refused', stranger: 'Stranger', spoof: 'Spoof', uncertain: 'Uncertain', received: 'Received',
    newRecords: '{n} new records',
  },
  alarms: {
    type: 'Type', severity: 'Severity', ack: 'Acknowledge', close: 'Close', new: 'New', acknowledged: 'Acknowledged',
    closed: 'Closed', handledBy: 'Handled by', notePrompt: 'Note', critical: 'Critical', major: 'Major', minor: 'Minor',
    types: {
      stranger: 'Stranger', spoof: 'Spoof attempt', tailgating: 'Tailgating', forced_open: 'Forced open',
      held_open: 'Held open', tamper: 'Tamper', fire_alarm: 'Fire', emergency: 'Emergency', fault: 'Fault',
      outbox_near_full: 'Storage nearly full', outbox_full: 'Storage full',
    },
  },
  stats: {
    range: 'Period', perHour: 'Entries per hour', perDay: 'Entries per day', perDoor: 'Per door / device',
    strangers: 'Strangers per day', download: 'Download table', scanned: '{n} records counted', limit: 'At most {n} records',
  },
  users: {
    username: 'User name', display: 'Name', roles: 'Roles', sites: 'Sites', disabled: 'Disabled', locked: 'Locked',
    create: 'New user', initialPassword: 'Initial password', setRoles: 'Roles', disable: 'Disable', enable: 'Enable',
    unlock: 'Unlock', resetPassword: 'Reset password', roleNames: {
      sysadmin: 'System administrator', secadmin: 'Security administrator', auditadmin: 'Audit administrator',
      operator: 'Property operator', viewer: 'Viewer',
    }, oneAdmin: 'At most one of the three administrator roles',
  },
  audit: {
    verify: 'Verify the chain', ok: 'Audit chain intact, {n} records checked', bad: 'Audit chain broken! First bad record: {id}',
    actor: 'Actor', action: 'Action', object: 'Object', detail: 'Detail', source: 'Source',
  },
  exports: {
    kind: 'Content', requester: 'Requested by', reason: 'Reason', approve: 'Approve', reject: 'Reject', pending: 'Pending',
    approved: 'Approved', rejected: 'Rejected', downloaded: 'Downloaded', persons: 'Archives', events: 'Access records',
    approver: 'Decided by', filter: 'Filter', photos: 'Face photos', exportsTab: 'Export requests', deletionsTab: 'Bulk deletion requests',
    biometrics: 'Delete face data', archives: 'Erase archives', count: 'Persons', done: 'Carried out', deleted: '{n} persons, {p} photos deleted',
    approveDeletion: 'Approving deletes at once and cannot be undone. Approve?',
  },
  deletion: {
    request: 'Request bulk deletion', exportPhotos: 'Export face photos', selected: '{n} selected', scope: 'Scope', scopeSelected: 'Selected persons',
    scopeMovedOut: 'Everyone moved out', scopeAll: 'Everyone (incl. residents)', kind: 'Delete', reason: 'Reason', submitted: 'Submitted; another user must approve it',
    kindHint: 'Face data: photos and feature codes, the archive stays. Erase archives: also name, phone, ID number and history; only the code remains',
  },
  maint: {
    retention: 'Retention', runRetention: 'Run retention now', report: 'Report', backup: 'Online backup',
    backupFile: 'Backup file (absolute path on the server)', runBackup: 'Back up', verifyBackup: 'Verify backup',
    retentionHint: 'Retention periods are set in the server configuration: snapshots {s} months, records {e} months (defaults)',
    keys: 'Keys', keysHint: 'Key rotation is a server command (see docs/crypto.md)',
    snapshot_months: 'Snapshots', video_months: 'Video references', event_months: 'Access and alarm records', quarantine_months: 'Quarantined uploads',
    policy: 'Security policy (server configuration)', months: 'months', fromConfig: 'As set in the server configuration file', setBy: 'Changed by {who} at {at}', lastRun: 'Last run: {at} ({who})',
    master: 'Master key', sm2: 'Server SM2 signing key', tls: 'TLS certificate fingerprint', backupKey: 'Backup key',
    backupKeyHint: 'not wrapped by the master key: keep a copy off the machine', lastRotation: 'Last rotation', keyFile: 'File', purpose: 'Protects',
    keyId: 'Key id', wrappedBy: 'Wrapped by master', rotate: 'Rotate master key',
    rotateHint: 'A new master key re-wraps every class key; no downtime, sealed data stays readable',
    rotateConfirm: 'Rotate the master key? Afterwards keep a copy of the new master.key off the machine.', rotated: 'Master key rotated: {id}',
  },
  errors: {
    forbidden: 'Forbidden', session_expired: 'Session expired', conflict: 'Conflict', not_found: 'Not found',
    bad_request: 'Bad request', network: 'Cannot reach the server',
  },
}

export const i18n = createI18n({
  legacy: false,
  locale: localStorage.getItem('anju.lang') || 'zh',
  fallbackLocale: 'zh',
  messages: { zh, en },
})

export function setLang(l) {
  i18n.global.locale.value = l
  localStorage.setItem('anju.lang', l)
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en'
}
