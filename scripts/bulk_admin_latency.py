#!/usr/bin/env python3
# Cost of the approval-gated bulk operations against a running anju-server:
# a bulk deletion of N persons' face data (each with one imported feature code), a photo
# export of M enrolled LFW photos (request, approval, download), and an online master-key
# rotation. The approver is the initial security administrator: the script completes its
# first login (new password, TOTP) from the one-time password in the server's log.
#   scripts/bulk_admin_latency.py URL DATA_DIR SERVER_LOG [N=2000] [LFW_DIR] [M=50]
#   (URL e.g. http://127.0.0.1:8640 with --plain-http; a fresh data directory)
import base64, hashlib, hmac, json, os, random, re, struct, sys, time, urllib.request

base, data_dir, log = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
lfw = sys.argv[5] if len(sys.argv) > 5 else ''
m = int(sys.argv[6]) if len(sys.argv) > 6 else 50
admin = open(os.path.join(data_dir, 'admin.token')).read().strip()


def call(method, path, body=None, token=admin, raw=False):
    req = urllib.request.Request(base + '/api/v1' + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={'Authorization': 'Bearer ' + token,
                                          'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            b = r.read()
            return r.status, (b if raw else json.loads(b or b'{}'))
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b'{}')


def totp(secret_b32, t):
    key = base64.b32decode(secret_b32 + '=' * (-len(secret_b32) % 8))
    h = hmac.new(key, struct.pack('>Q', int(t) // 30), hashlib.sha1).digest()
    o = h[-1] & 15
    return '%06d' % ((struct.unpack('>I', h[o:o + 4])[0] & 0x7fffffff) % 1000000)


def approver():
    pw = re.search(r'initial administrator:\s*secadmin\s.*?one-time password:\s*(\S+)',
                   open(log, encoding='utf-8').read()).group(1)
    s, r = call('POST', '/auth/login', {'username': 'secadmin', 'password': pw}, token='')
    assert s == 200, r
    tok, new = r['token'], 'Bench#2026-' + pw[:6] + 'Qz'
    assert call('POST', '/auth/password', {'old_password': pw, 'new_password': new}, token=tok)[0] == 200
    s, r = call('POST', '/auth/totp/setup', {}, token=tok)
    assert s == 200, r
    assert call('POST', '/auth/totp/confirm', {'code': totp(r['secret'], time.time())}, token=tok)[0] == 200
    return tok


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


sec = approver()
with urllib.request.urlopen(base + '/healthz') as r:
    model = json.loads(r.read())['model_version']
rng = random.Random(1)
codes = []
t0 = time.perf_counter()
for i in range(n):
    code = 'B%05d' % i
    call('POST', '/persons', {'code': code, 'name': 'bench %d' % i})
    call('POST', f'/persons/{code}/consents', {'notice_version': '1', 'purpose': 'bench'})
    v = [rng.gauss(0, 1) for _ in range(512)]
    norm = sum(x * x for x in v) ** 0.5
    feat = base64.b64encode(struct.pack('<512f', *[x / norm for x in v])).decode()
    s, r = call('POST', f'/persons/{code}/features', {'feature': feat, 'model_version': model})
    assert s == 201, r
    codes.append(code)
print(f'set-up: {n} persons with a feature code in {time.perf_counter() - t0:.1f} s')

(s, req), t_req = timed(lambda: call('POST', '/deletions', {'kind': 'biometrics', 'persons': codes,
                                                             'reason': 'bench'}))
assert s == 201, req
(s, done), t_del = timed(lambda: call('POST', f'/deletions/{req["id"]}/approve', {}, token=sec))
assert s == 200 and done['deleted'] == n, done
print(f'bulk deletion of {n} persons: request {t_req * 1000:.0f} ms, approve + delete '
      f'{t_del:.2f} s ({n / t_del:.0f} persons/s)')

if lfw:
    enrolled = []
    for d in sorted(x for x in os.listdir(lfw))[:m * 3]:
        if len(enrolled) >= m:
            break
        code = 'P' + d[:40].replace(' ', '_')
        call('POST', '/persons', {'code': code, 'name': d})
        call('POST', f'/persons/{code}/consents', {'notice_version': '1', 'purpose': 'bench'})
        for f in sorted(os.listdir(os.path.join(lfw, d)))[:1]:
            img = base64.b64encode(open(os.path.join(lfw, d, f), 'rb').read()).decode()
            if call('POST', f'/persons/{code}/photos', {'image': img, 'accept_duplicate': True})[0] == 201:
                enrolled.append(code)
    s, e = call('POST', '/exports', {'kind': 'photos', 'filter': {'persons': enrolled}, 'reason': 'bench'})
    assert s == 201, e
    assert call('POST', f'/exports/{e["id"]}/approve', {}, token=sec)[0] == 200
    (s, blob), t_exp = timed(lambda: call('POST', f'/exports/{e["id"]}/download',
                                          {'passphrase': 'Bench-Pass-1'}, raw=True))
    assert s == 200, blob
    print(f'photo export of {len(enrolled)} photos: download {t_exp:.2f} s '
          f'({t_exp * 1000 / len(enrolled):.1f} ms/photo), {len(blob) / 1e6:.1f} MB encrypted')

rot = []
for _ in range(5):
    (s, r), t = timed(lambda: call('POST', '/keys/rotate', {}, token=sec))
    assert s == 200, r
    rot.append(t * 1000)
print(f'master-key rotation: median {sorted(rot)[2]:.0f} ms of 5')
