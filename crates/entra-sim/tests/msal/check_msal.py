#!/usr/bin/env python3
"""Drives a running entra-sim with Microsoft's MSAL for Python (the `msal` package), to show that the
simulator speaks the protocol and not one client's dialect of it.

Against the embedded "contoso" scenario it checks, in order:

  1. client credentials with a client secret (ConfidentialClientApplication),
  2. client credentials with a certificate, both as MSAL sends them today (SHA-256 thumbprint,
     PS256, with the public certificate) and the SHA-1 way (RS256, x5t),
  3. the authorization code flow with PKCE for the desktop sample app, a public client
     (initiate_auth_code_flow; the sign-in pages are driven with requests, as a browser would),
  4. the device code flow (initiate_device_flow; the verification page is driven from a thread
     while acquire_token_by_device_flow polls),
  5. refresh (acquire_token_silent with force_refresh=True, without a secret).

Usage: check_msal.py --base https://127.0.0.1:8444 --ca .entra-sim/ca.pem
Each step prints what it checked; the script exits non-zero at the first failure.
"""

import argparse
import base64
import json
import os
import pathlib
import sys
import threading
import urllib.parse
from html.parser import HTMLParser

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

TENANT = "contoso.onmicrosoft.com"
TENANT_ID = "3f2a9c4e-5b1d-4c7a-9e2f-6d8b0a1c2e3f"
GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
# A vendor app of the scenario, with a client secret.
INSIGHTS = "c0de0000-0000-4000-8000-000000000001"
INSIGHTS_SECRET = "demo-secret-insights-m365"
# Contoso's own app, with a certificate (scenarios/contoso-custom-app/).
CUSTOM_APP = "c0a70000-0000-4000-8000-0000000c0570"
# The desktop sample app: a public client (no secret).
DESKTOP = "c0de0000-0000-4000-8000-0000000000de"
USER = "user@contoso.onmicrosoft.com"
MFA_USER = "mfa.user@contoso.onmicrosoft.com"
PASSWORD = "Demo-Passw0rd!"
MFA_CODES = {MFA_USER: "246810"}
LOOPBACK_REDIRECT = "http://localhost:53117"


class Failure(Exception):
    """A check that did not hold."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def claims(jwt):
    """The payload of a JWT (not verified: MSAL and the simulator's tests do that)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def token_ok(result, what):
    check(
        isinstance(result, dict) and "access_token" in result,
        f"{what}: no access token: {json.dumps(result, indent=2) if isinstance(result, dict) else result}",
    )
    return claims(result["access_token"])


class Form(HTMLParser):
    """The first form of a page: its action, inputs and submit buttons."""

    def __init__(self, html):
        super().__init__()
        self.action = None
        self.fields = {}
        self.buttons = []
        self._in_form = False
        self._done = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form":
            self._in_form = True
            self.action = a.get("action")
        elif self._in_form and tag == "input" and a.get("name") and a.get("type") != "checkbox":
            self.fields[a["name"]] = a.get("value") or ""
        elif self._in_form and tag == "button" and a.get("name"):
            self.buttons.append((a["name"], a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class Browser:
    """A person's browser on the simulator's pages: forms are posted, redirects are not followed
    (the last one goes to the app's loopback redirect URI, where nothing listens)."""

    def __init__(self, ca):
        self.http = requests.Session()
        self.http.verify = ca

    def get(self, url):
        return self.http.get(url, allow_redirects=False, timeout=30)

    def submit(self, page, values, button=None):
        form = Form(page.text)
        check(form.action, f"no form on the page ({page.status_code}):\n{page.text}")
        fields = dict(form.fields)
        fields.update(values)
        if button is not None:
            name = next((n for n, v in form.buttons if v == button), None)
            check(name, f"no '{button}' button on the page:\n{page.text}")
            fields[name] = button
        return self.http.post(form.action, data=fields, allow_redirects=False, timeout=30)

    def sign_in(self, page, user):
        """Password, one-time code and consent pages, as they come; returns the page after them."""
        for _ in range(6):
            if page.status_code != 200:
                return page
            form = Form(page.text)
            if "password" in form.fields:
                page = self.submit(page, {"username": user, "password": PASSWORD})
            elif "otc" in form.fields:
                page = self.submit(page, {"otc": MFA_CODES.get(user, "123456")})
            elif any(v == "accept" for _, v in form.buttons):
                page = self.submit(page, {}, button="accept")
            else:
                return page
        raise Failure("the sign-in did not end")


def control(base, ca, op):
    """An operation of the simulator's control API (POST /_sim/ops)."""
    resp = requests.post(f"{base}/_sim/ops", json=op, verify=ca, timeout=30)
    check(resp.status_code == 200, f"control API {op['op']}: {resp.status_code} {resp.text}")


def graph_get(base, ca, path, access_token):
    resp = requests.get(
        f"{base}/v1.0{path}",
        headers={"Authorization": f"Bearer {access_token}"},
        verify=ca,
        timeout=30,
    )
    check(resp.status_code == 200, f"Graph GET {path}: {resp.status_code} {resp.text}")
    return resp.json()


def step(n, text):
    print(f"ok {n} - {text}", flush=True)


def client_secret(base, ca, authority):
    control(base, ca, {"op": "grant_admin_consent", "tenant": TENANT, "client_id": INSIGHTS})
    app = msal.ConfidentialClientApplication(
        INSIGHTS,
        client_credential=INSIGHTS_SECRET,
        authority=authority,
        instance_discovery=False,
        verify=ca,
    )
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    at = token_ok(result, "client credentials with a secret")
    check(at.get("azpacr") == "1", f"azpacr {at.get('azpacr')!r}, expected '1' (secret)")
    check("User.Read.All" in at.get("roles", []), f"roles {at.get('roles')}")
    check(at.get("tid") == TENANT_ID, f"tid {at.get('tid')}")
    sps = graph_get(base, ca, f"/servicePrincipals?$filter=appId eq '{INSIGHTS}'", result["access_token"])
    check(len(sps.get("value", [])) == 1, f"Graph: the app's service principal: {sps}")
    step(
        1,
        f"client credentials with a secret: roles {sorted(at['roles'])}, azpacr 1, "
        f"Graph shows the service principal '{sps['value'][0].get('displayName')}'",
    )


def client_certificate(base, ca, authority, cert_dir):
    control(base, ca, {"op": "grant_admin_consent", "tenant": TENANT, "client_id": CUSTOM_APP})
    key_pem = (cert_dir / "key.pem").read_text()
    cert_pem = (cert_dir / "cert.pem").read_text()
    sha1 = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA1()).hex()
    variants = [
        ("SHA-256 thumbprint and public certificate (PS256, x5t#S256, x5c)",
         {"private_key": key_pem, "public_certificate": cert_pem}),
        ("SHA-1 thumbprint (RS256, x5t)", {"private_key": key_pem, "thumbprint": sha1}),
    ]
    for label, credential in variants:
        app = msal.ConfidentialClientApplication(
            CUSTOM_APP,
            client_credential=credential,
            authority=authority,
            instance_discovery=False,
            verify=ca,
        )
        result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
        at = token_ok(result, f"client credentials with a certificate, {label}")
        check(at.get("azpacr") == "2", f"{label}: azpacr {at.get('azpacr')!r}, expected '2'")
        check("Sites.FullControl.All" in at.get("roles", []), f"{label}: roles {at.get('roles')}")
        step(2, f"client credentials with a certificate, {label}: azpacr 2")


def public_app(authority, ca, cache):
    return msal.PublicClientApplication(
        DESKTOP,
        authority=authority,
        instance_discovery=False,
        verify=ca,
        token_cache=cache,
    )


def auth_code_pkce(base, ca, authority, cache):
    app = public_app(authority, ca, cache)
    # form_post, as MSAL recommends: the last page posts the code to the redirect URI.
    flow = app.initiate_auth_code_flow(
        ["User.Read"], redirect_uri=LOOPBACK_REDIRECT, login_hint=USER, response_mode="form_post"
    )
    check("auth_uri" in flow, f"initiate_auth_code_flow: {flow}")
    check(flow.get("code_verifier"), "MSAL did not make a PKCE verifier")
    browser = Browser(ca)
    page = browser.sign_in(browser.get(flow["auth_uri"]), USER)
    form = Form(page.text) if page.status_code == 200 else None
    check(
        form is not None and (form.action or "").startswith(LOOPBACK_REDIRECT) and "code" in form.fields,
        f"expected the form posting the code to {LOOPBACK_REDIRECT}, got {page.status_code}:\n{page.text}",
    )
    response = dict(form.fields)
    result = app.acquire_token_by_auth_code_flow(flow, response)
    at = token_ok(result, "authorization code with PKCE")
    check(at.get("azpacr") == "0", f"azpacr {at.get('azpacr')!r}, expected '0' (public client)")
    check(result.get("id_token_claims", {}).get("preferred_username") == USER,
          f"ID token claims {result.get('id_token_claims')}")
    check("refresh_token" in result, "no refresh token (offline_access)")
    me = graph_get(base, ca, "/me", result["access_token"])
    check(me.get("userPrincipalName") == USER, f"/me: {me}")
    step(3, f"authorization code + PKCE as a public client: {USER} signed in, azpacr 0, "
            f"scope '{result.get('scope')}', Graph /me is {me['displayName']}")


def device_code(ca, authority, cache):
    app = public_app(authority, ca, cache)
    flow = app.initiate_device_flow(scopes=["User.Read"])
    check("user_code" in flow, f"initiate_device_flow: {flow}")
    check(flow["verification_uri"] in flow["message"] and flow["user_code"] in flow["message"],
          f"message: {flow['message']}")
    failures = []

    def user_on_another_device():
        try:
            browser = Browser(ca)
            page = browser.get(flow["verification_uri"])
            page = browser.submit(page, {"user_code": flow["user_code"]})
            page = browser.sign_in(page, MFA_USER)
            check(page.status_code == 200 and "You may now close this window" in page.text,
                  f"the verification page did not end as signed in ({page.status_code}):\n{page.text}")
        except Exception as e:  # reported by the main thread
            failures.append(e)
            flow["expires_at"] = 0  # stops MSAL's polling loop

    user = threading.Thread(target=user_on_another_device)
    user.start()
    result = app.acquire_token_by_device_flow(flow)
    user.join()
    if failures:
        raise Failure(f"verification page: {failures[0]}")
    at = token_ok(result, "device code")
    check(at.get("azpacr") == "0", f"azpacr {at.get('azpacr')!r}, expected '0'")
    check(at.get("upn") == MFA_USER, f"upn {at.get('upn')}")
    check("mfa" in at.get("amr", []), f"amr {at.get('amr')}")
    step(4, f"device code: {MFA_USER} signed in on the verification page with MFA, "
            f"MSAL polled (interval {flow['interval']} s) and got tokens, azpacr 0")


def refresh(ca, authority, cache):
    app = public_app(authority, ca, cache)
    accounts = app.get_accounts(username=USER)
    check(accounts, f"no account for {USER} in MSAL's cache: {app.get_accounts()}")
    result = app.acquire_token_silent(["User.Read"], account=accounts[0], force_refresh=True)
    check(result is not None, "acquire_token_silent found nothing to refresh")
    at = token_ok(result, "refresh")
    check(result.get("token_source") == "identity_provider",
          f"token_source {result.get('token_source')!r}: not refreshed at the token endpoint")
    check(at.get("azpacr") == "0", f"azpacr {at.get('azpacr')!r}")
    step(5, f"refresh without a secret (acquire_token_silent, force_refresh): new access token "
            f"for {at.get('upn')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the simulator's base URL, https://127.0.0.1:PORT")
    parser.add_argument("--ca", required=True, help="the simulator's CA (ca.pem in its state directory)")
    parser.add_argument(
        "--cert-dir",
        default=str(pathlib.Path(__file__).resolve().parents[2] / "scenarios" / "contoso-custom-app"),
        help="the contoso custom app's key.pem and cert.pem",
    )
    args = parser.parse_args()
    base = args.base.rstrip("/")
    # The simulator is on loopback: never through a proxy.
    os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    # requests lets these variables override a session's `verify` (so MSAL's `verify=` too).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(name, None)
    authority = f"{base}/{TENANT}"
    print(f"MSAL for Python {msal.__version__} against {authority}", flush=True)
    cache = msal.TokenCache()
    try:
        client_secret(base, args.ca, authority)
        client_certificate(base, args.ca, authority, pathlib.Path(args.cert_dir))
        auth_code_pkce(base, args.ca, authority, cache)
        device_code(args.ca, authority, cache)
        refresh(args.ca, authority, cache)
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    print("all MSAL checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
