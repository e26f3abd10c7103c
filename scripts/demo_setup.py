#!/usr/bin/env python3
"""Populate a freshly started anju-server for the demo (`make run`, scripts/demo).

Creates a site, a building, a unit, a room and household per tenant, one terminal device at
the site with an access group, and enrols a few LFW people (moved into their household,
consent first, then the first photo of each). Creates the property manager's account
(operator: the daily work) and, acting as the security administrator on the demo's behalf,
grants it the operator role (the security administrator's first login is done here:
password changed and TOTP enrolled, both written to the accounts file). Writes the image
sequence the demo terminal replays: each enrolled person's photos, a stranger, blank frames
between people so that each approach is its own track. Writes the device's enrolment code.

Only the Python standard library: the demo must run on a fresh Debian 12 machine.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import struct
import sys
import time
import urllib.error
import urllib.request


def api(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            text = res.read().decode()
            return json.loads(text) if text else {}
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: HTTP {e.code}: {e.read().decode()[:300]}")


def login(base, username, password, totp=None):
    body = {"username": username, "password": password}
    if totp:
        body["totp"] = totp
    req = urllib.request.Request(base + "/api/v1/auth/login", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.load(res)["token"]
    except urllib.error.HTTPError as e:
        sys.exit(f"login {username}: HTTP {e.code}: {e.read().decode()[:300]}")


def totp_code(secret, at=None):
    """RFC 6238 (SHA-1, 30 s, 6 digits), as an authenticator app computes it."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = struct.pack(">Q", int((at or time.time()) // 30))
    h = hmac.new(key, counter, hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def strong_password(prefix):
    """Passes the policy: 3 character classes, not the user name, not a recent one."""
    return prefix + "-" + secrets.token_hex(3) + "-Qz7"


def initial_passwords(server_log):
    """The one-time passwords anju-server printed at its first start."""
    text = open(server_log, encoding="utf-8").read()
    return dict(re.findall(r"initial administrator:\s*(\S+)\s.*?one-time password:\s*(\S+)", text))


def accounts(a, token):
    """The property manager's account (operator), granted by the security administrator.

    Separation of duties (R4.2.1.1): the system administrator (here the integration token)
    creates accounts, only the security administrator grants roles. The demo plays the
    security administrator's first login: new password, TOTP enrolled, then the grant."""
    initial = initial_passwords(a.server_log)
    operator_pw = strong_password("Anju")
    api(a.server, token, "POST", "/api/v1/users",
        {"username": "wuye", "display_name": "物业管理员 / property manager", "password": operator_pw})
    out = {"wuye": {"password": operator_pw}}
    for user in ("admin", "auditadmin"):
        if user in initial:
            out[user] = {"password": initial[user]}
    if "secadmin" not in initial:
        print("  未找到安全管理员的初始口令 / no initial password for secadmin: grant the operator role in the console")
        return out
    sec = login(a.server, "secadmin", initial["secadmin"])
    sec_pw = strong_password("Anju")
    api(a.server, sec, "POST", "/api/v1/auth/password",
        {"old_password": initial["secadmin"], "new_password": sec_pw})
    setup = api(a.server, sec, "POST", "/api/v1/auth/totp/setup", {})
    api(a.server, sec, "POST", "/api/v1/auth/totp/confirm", {"code": totp_code(setup["secret"])})
    api(a.server, sec, "PUT", "/api/v1/users/wuye/roles", {"roles": ["operator"], "sites": []})
    api(a.server, sec, "POST", "/api/v1/auth/logout", {})
    out["secadmin"] = {"password": sec_pw, "totp_secret": setup["secret"],
                       "otpauth_uri": setup.get("otpauth_uri", "")}
    return out


def write_bmp(path, width, height, grey):
    """A uniform grey 24-bit BMP (no imaging library needed)."""
    row = bytes([grey] * 3 * width) + b"\0" * ((4 - 3 * width % 4) % 4)
    pixels = row * height
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + info + pixels)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--lfw", required=True, help="LFW image folder (one folder per person)")
    ap.add_argument("--frames", required=True, help="output folder for the replayed frames")
    ap.add_argument("--people", type=int, default=4)
    ap.add_argument("--code-file", required=True)
    ap.add_argument("--server-log", required=True, help="anju-server's stdout (initial passwords)")
    ap.add_argument("--accounts-file", required=True, help="output: the demo's accounts (JSON)")
    a = ap.parse_args()
    token = open(a.token_file).read().strip()

    site = api(a.server, token, "POST", "/api/v1/sites", {"name": "安居示范社区 / Anju demo community"})
    building = api(a.server, token, "POST", "/api/v1/buildings", {"site_id": site["id"], "name": "1号楼"})
    unit = api(a.server, token, "POST", "/api/v1/units", {"building_id": building["id"], "name": "1单元"})
    device = api(a.server, token, "POST", "/api/v1/devices",
                 {"name": "1号楼1单元门 / Bldg 1 Unit 1 door", "doors": 1, "site_id": site["id"]})
    group = api(a.server, token, "POST", "/api/v1/access-groups", {"name": "1单元住户 / Unit 1 tenants"})
    api(a.server, token, "PUT", f"/api/v1/access-groups/{group['id']}/doors",
        {"doors": [{"device_id": device["device_id"], "door": 0}]})

    people = sorted(d for d in os.listdir(a.lfw) if len(os.listdir(os.path.join(a.lfw, d))) >= 3)
    strangers = sorted(d for d in os.listdir(a.lfw) if len(os.listdir(os.path.join(a.lfw, d))) == 1)
    enrolled = []
    attempt = 0
    for name in people:
        if len(enrolled) == a.people:
            break
        photos = sorted(os.listdir(os.path.join(a.lfw, name)))
        attempt += 1
        code = "T%04d" % attempt
        # A room and household of their own (1单元 101, 102, …).
        room = api(a.server, token, "POST", "/api/v1/rooms",
                   {"unit_id": unit["id"], "name": "%d" % (100 + attempt)})
        household = api(a.server, token, "POST", "/api/v1/households",
                        {"room_id": room["id"], "name": "%d室 / Flat %d" % (100 + attempt, 100 + attempt)})
        api(a.server, token, "POST", "/api/v1/persons",
            {"code": code, "name": name.replace("_", " "), "household_id": household["id"],
             "role": "tenant"})
        api(a.server, token, "POST", f"/api/v1/persons/{code}/consents",
            {"notice_version": "demo-1", "purpose": "门禁通行 / door access", "operator": "demo"})
        with open(os.path.join(a.lfw, name, photos[0]), "rb") as f:
            image = base64.b64encode(f.read()).decode()
        req = urllib.request.Request(a.server + f"/api/v1/persons/{code}/photos",
                                     data=json.dumps({"image": image}).encode(), method="POST")
        req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/json")
        try:
            urllib.request.urlopen(req, timeout=60).read()
        except urllib.error.HTTPError as e:  # quality gate refused this photo: next person
            try:
                err = json.loads(e.read().decode())["error"]
                why = f"{err['code']}: {err['message']}"
            except (ValueError, KeyError):
                why = f"HTTP {e.code}"
            print(f"  未登记 / not enrolled {name}: {why}")
            continue
        enrolled.append((code, name, photos[1:]))
        print(f"  已登记 / enrolled {code} = {name}")
    api(a.server, token, "POST", f"/api/v1/access-groups/{group['id']}/members",
        {"add": [code for code, _, _ in enrolled]})

    os.makedirs(a.frames, exist_ok=True)
    n = 0

    def frame_link(src):
        nonlocal n
        n += 1
        os.symlink(src, os.path.join(a.frames, "%05d%s" % (n, os.path.splitext(src)[1])))

    def blanks(count):
        nonlocal n
        for _ in range(count):
            n += 1
            write_bmp(os.path.join(a.frames, "%05d.bmp" % n), 250, 250, 60)

    blanks(10)
    sequence = [(name, os.path.join(a.lfw, name, photos[0])) for _, name, photos in enrolled]
    if strangers:
        s = strangers[len(strangers) // 2]
        sequence.insert(2, (s, os.path.join(a.lfw, s, sorted(os.listdir(os.path.join(a.lfw, s)))[0])))
    for _, path in sequence:
        for _ in range(8):  # someone standing at the door for a moment
            frame_link(path)
        blanks(60)          # gone for 6 s: the track ends, the door window closes
    with open(a.code_file, "w") as f:
        f.write(device["enrolment_code"])
    with open(a.accounts_file, "w") as f:
        json.dump(accounts(a, token), f, ensure_ascii=False)
    os.chmod(a.accounts_file, 0o600)
    print(f"  门禁设备 / device {device['device_id']}, {len(sequence)} 次通行 / approaches, {n} 帧 / frames")


if __name__ == "__main__":
    main()
