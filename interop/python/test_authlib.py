"""Latchkey with Authlib as the relying party: authorization code + PKCE (S256) with state and
nonce, ID token validation (signature against the JWKS, then Authlib's OIDC claim checks), userinfo,
refresh rotation and revocation. The login/consent app is plain HTTP against the Hydra v2 admin
API; the browser is a requests session that never follows redirects."""

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from conftest import CONSENT_URL, LOGIN_URL

REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPE = "openid offline_access email"
TIMEOUT = 30


def query(url):
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def direct(session):
    """Every request goes to loopback: no proxy from the environment."""
    session.trust_env = False
    return session


HTTP = direct(requests.Session())


def redirect(browser, url, what):
    """A GET that must redirect; returns the Location."""
    res = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert res.status_code in (302, 303), f"{what}: {res.status_code} {res.text[:500]}"
    return requests.compat.urljoin(url, res.headers["Location"])


def admin(server, method, path, **kwargs):
    res = HTTP.request(method, server.admin_url + path, timeout=TIMEOUT, **kwargs)
    res.raise_for_status()
    return res.json() if res.content else None


def create_client(server):
    return admin(server, "POST", "/admin/clients", json={
        "client_name": f"interop-python-{secrets.token_hex(6)}",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [REDIRECT_URI],
        "scope": SCOPE,
        "token_endpoint_auth_method": "client_secret_basic",
    })


@pytest.fixture(scope="module")
def metadata(latchkey):
    res = HTTP.get(latchkey.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
    res.raise_for_status()
    meta = res.json()
    assert meta["issuer"] == latchkey.issuer
    return meta


def session(client):
    return direct(OAuth2Session(
        client["client_id"], client["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        scope=SCOPE, redirect_uri=REDIRECT_URI, code_challenge_method="S256",
    ))


def code_flow(server, meta, client, subject):
    """Authlib builds the request; the browser and the login/consent app take it to the callback;
    Authlib checks the state and redeems the code with the PKCE verifier."""
    rp = session(client)
    code_verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce)
    assert "code_challenge_method=S256" in url

    browser = direct(requests.Session())
    to_login = redirect(browser, url, "authorization endpoint")
    assert to_login.startswith(LOGIN_URL + "?")
    login_challenge = query(to_login)["login_challenge"]
    login = admin(server, "GET", "/admin/oauth2/auth/requests/login",
                  params={"login_challenge": login_challenge})
    assert login["client"]["client_id"] == client["client_id"]
    accepted = admin(server, "PUT", "/admin/oauth2/auth/requests/login/accept",
                     params={"login_challenge": login_challenge}, json={"subject": subject})

    to_consent = redirect(browser, accepted["redirect_to"], "login verifier")
    assert to_consent.startswith(CONSENT_URL + "?")
    consent_challenge = query(to_consent)["consent_challenge"]
    consent = admin(server, "GET", "/admin/oauth2/auth/requests/consent",
                    params={"consent_challenge": consent_challenge})
    assert consent["subject"] == subject
    accepted = admin(server, "PUT", "/admin/oauth2/auth/requests/consent/accept",
                     params={"consent_challenge": consent_challenge}, json={
                         "grant_scope": consent["requested_scope"],
                         "session": {"id_token": {"email": f"{subject}@example.com"}},
                     })

    callback = redirect(browser, accepted["redirect_to"], "consent verifier")
    assert callback.startswith(REDIRECT_URI + "?")
    assert query(callback)["iss"] == server.issuer  # RFC 9207
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=callback,
                           state=state, code_verifier=code_verifier)
    return rp, token, nonce


def validate_id_token(meta, client, token, nonce):
    """What Authlib's OpenIDMixin.parse_id_token does: verify the signature with the JWKS
    (joserfc), then Authlib's CodeIDToken checks (iss, aud, exp, iat, nonce, at_hash, azp)."""
    jwks = HTTP.get(meta["jwks_uri"], timeout=TIMEOUT).json()
    decoded = jwt.decode(
        token["id_token"], KeySet.import_key_set(jwks),
        registry=JWSRegistry(algorithms=meta["id_token_signing_alg_values_supported"]),
    )
    claims = CodeIDToken(
        decoded.claims, decoded.header,
        {"iss": {"essential": True, "values": [meta["issuer"]]}},
        {"nonce": nonce, "client_id": client["client_id"], "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)
    return claims


def at_hash(access_token):
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def test_code_flow_pkce_id_token_userinfo(latchkey, metadata):
    client = create_client(latchkey)
    subject = f"alice-{secrets.token_hex(4)}"
    rp, token, nonce = code_flow(latchkey, metadata, client, subject)
    assert token["token_type"].lower() == "bearer"
    assert token["refresh_token"]
    assert sorted(token["scope"].split()) == ["email", "offline_access", "openid"]

    claims = validate_id_token(metadata, client, token, nonce)
    assert claims["sub"] == subject
    assert claims["email"] == f"{subject}@example.com"
    assert claims["at_hash"] == at_hash(token["access_token"])

    userinfo = rp.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json()["sub"] == subject
    assert userinfo.json()["email"] == f"{subject}@example.com"


def test_refresh_rotates_and_reuse_fails(latchkey, metadata):
    client = create_client(latchkey)
    rp, first, _ = code_flow(latchkey, metadata, client, f"bob-{secrets.token_hex(4)}")

    second = rp.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # A retry of the first token (a timeout, a second tab) gets the very same answer.
    retry = rp.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert retry["refresh_token"] == second["refresh_token"]
    assert retry["access_token"] == second["access_token"]
    third = rp.refresh_token(metadata["token_endpoint"], refresh_token=second["refresh_token"])
    assert third["refresh_token"] != second["refresh_token"]

    # After the grace period (1 s here) and the burst window (2 s), reuse is theft: refused, and
    # the family is revoked.
    time.sleep(3.2)
    with pytest.raises(OAuthError) as reused:
        rp.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as revoked:
        rp.refresh_token(metadata["token_endpoint"], refresh_token=third["refresh_token"])
    assert revoked.value.error == "invalid_grant"


def test_revocation(latchkey, metadata):
    client = create_client(latchkey)
    rp, token, _ = code_flow(latchkey, metadata, client, f"carol-{secrets.token_hex(4)}")
    res = rp.revoke_token(metadata["revocation_endpoint"], token=token["refresh_token"],
                          token_type_hint="refresh_token")
    assert res.status_code == 200, res.text
    for t in (token["refresh_token"], token["access_token"]):
        assert admin(latchkey, "POST", "/admin/oauth2/introspect", data={"token": t}) == {"active": False}
    with pytest.raises(OAuthError) as refused:
        rp.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
