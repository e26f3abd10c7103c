#!/usr/bin/env python3
# Latency of POST /api/v1/persons/search-by-face against a running anju-server: enrols up to
# 50 LFW persons (one accepted photo each), then searches with another photo of each of 22 of
# them; the first two calls warm the engine and are not counted.
#   scripts/face_search_latency.py URL TOKEN LFW_DIR   (URL e.g. http://127.0.0.1:8640 with
#   --plain-http; TOKEN: <data-dir>/admin.token)
import base64, json, os, statistics, sys, time, urllib.request
base, token, lfw = sys.argv[1], sys.argv[2], sys.argv[3]
def call(method, path, body=None):
    req = urllib.request.Request(base + '/api/v1' + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req) as r: return r.status, json.loads(r.read() or b'{}')
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read() or b'{}')
b64 = lambda p: base64.b64encode(open(p, 'rb').read()).decode()
people = sorted(d for d in os.listdir(lfw) if len(os.listdir(os.path.join(lfw, d))) >= 2)[:50]
probes = []
for i, d in enumerate(people):
    code = 'L%03d' % i
    call('POST', '/persons', {'code': code, 'name': d})
    call('POST', f'/persons/{code}/consents', {'notice_version': '1', 'purpose': 'test'})
    photos = sorted(os.listdir(os.path.join(lfw, d)))
    for j, f in enumerate(photos):
        if call('POST', f'/persons/{code}/photos', {'image': b64(os.path.join(lfw, d, f))})[0] == 201:
            rest = [x for x in photos if x != f]
            probes.append((code, os.path.join(lfw, d, rest[0])))
            break
print('enrolled', len(probes))
wall, server, rank1 = [], [], 0
for code, p in probes[:22]:
    body = {'image': b64(p)}
    t0 = time.perf_counter(); s, r = call('POST', '/persons/search-by-face', body); t = (time.perf_counter() - t0) * 1000
    if s != 200: print(s, r); continue
    wall.append(t); server.append(r['elapsed_ms']); rank1 += r['results'][0]['code'] == code
wall, server = wall[2:], server[2:]  # first two warm the engine
q = lambda v, f: sorted(v)[int(f * (len(v) - 1))]
print(f'calls {len(wall)} wall p50 {statistics.median(wall):.0f} ms p90 {q(wall,.9):.0f} max {max(wall):.0f}; '
      f'server elapsed_ms p50 {statistics.median(server):.0f} p90 {q(server,.9):.0f}; rank-1 correct {rank1}/{len(probes[:22])}')
