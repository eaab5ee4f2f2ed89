"""Gets a Latchkey access token with the apps.write scope for a user, the way a login and
consent app would: a public client with PKCE, the login and consent accepted through the admin
API. Prints the token. Used by scripts/schemathesis.

usage: schemathesis-token.py PUBLIC_URL ADMIN_URL ADMIN_TOKEN USER_ID ACCOUNT_ID
"""
import base64
import hashlib
import secrets
import sys
from urllib.parse import parse_qs, urlparse

import requests

public, admin, admin_token, user_id, account_id = sys.argv[1:6]
auth = {"Authorization": f"Bearer {admin_token}"}
redirect_uri = "http://127.0.0.1:9/callback"

r = requests.post(f"{admin}/admin/clients", headers=auth, timeout=10, json={
    "client_name": "schemathesis", "redirect_uris": [redirect_uri],
    "grant_types": ["authorization_code"], "response_types": ["code"],
    "scope": "openid apps.write", "token_endpoint_auth_method": "none", "skip_consent": False})
r.raise_for_status()
client_id = r.json()["client_id"]

verifier = secrets.token_urlsafe(48)
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
browser = requests.Session()


def follow(url):
    res = browser.get(url, allow_redirects=False, timeout=10)
    assert res.status_code in (302, 303), (res.status_code, res.text[:300])
    return res.headers["Location"]


def query(url, name):
    return parse_qs(urlparse(url).query)[name][0]


login = follow(f"{public}/oauth2/auth?" + requests.compat.urlencode({
    "client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
    "scope": "openid apps.write", "state": secrets.token_urlsafe(16),
    "code_challenge": challenge, "code_challenge_method": "S256"}))
r = requests.put(f"{admin}/admin/oauth2/auth/requests/login/accept", headers=auth, timeout=10,
                 params={"login_challenge": query(login, "login_challenge")}, json={"subject": user_id})
r.raise_for_status()
consent = follow(r.json()["redirect_to"])
r = requests.put(f"{admin}/admin/oauth2/auth/requests/consent/accept", headers=auth, timeout=10,
                 params={"consent_challenge": query(consent, "consent_challenge")},
                 json={"grant_scope": ["openid", "apps.write"], "accounts": [account_id]})
r.raise_for_status()
back = follow(r.json()["redirect_to"])
r = requests.post(f"{public}/oauth2/token", timeout=10, data={
    "grant_type": "authorization_code", "code": query(back, "code"), "redirect_uri": redirect_uri,
    "client_id": client_id, "code_verifier": verifier})
r.raise_for_status()
print(r.json()["access_token"])
