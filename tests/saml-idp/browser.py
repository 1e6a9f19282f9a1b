#!/usr/bin/python3
"""A scripted browser for end-to-end SAML logins (stdlib only).

  browser.py login --jar JAR --user U --password P --stop PREFIX
                   [--print-saml-response] [--save-form FILE] URL
  browser.py get   --jar JAR [--stop PREFIX] URL
  browser.py post  --jar JAR [--stop PREFIX] URL NAME=VALUE...

login: GET URL and follow redirects; fill in SimpleSAMLphp's login form (the
  form with an input named "password"; hidden inputs such as AuthState are
  kept); submit auto-POST forms carrying SAMLRequest/SAMLResponse (the HTTP-POST
  binding page) to their action, as a browser with JavaScript would; stop at the
  first redirect whose Location starts with PREFIX: print that Location, exit 0.
  Anything else ends with "status CODE" and the first 4000 characters of the
  body, exit 1. --print-saml-response prints the SAMLResponse (base64) of the
  first POST form carrying one instead of submitting it, exit 0; --save-form
  FILE then also writes that form as JSON {"action": URL, "fields": {...}}.
get: GET URL, follow redirects and submit SAML POST forms until a page that is
  neither; print "status CODE" and the body, exit 0 (or, with --stop, as login).
post: POST NAME=VALUE fields to URL (e.g. a tampered SAMLResponse to the ACS)
  and go on as get; with --stop, as login.

Cookies live in JAR (Mozilla/Netscape format, also readable by curl -b),
loaded before and saved after each run; session cookies are kept and Secure
cookies are sent over plain http too. Only loopback hosts are visited; at most
25 hops.
"""
import argparse
import http.cookiejar
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

MAX_HOPS = 25
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SAML_FIELDS = ("SAMLResponse", "SAMLRequest")


class Policy(http.cookiejar.DefaultCookiePolicy):
    """Send Secure cookies over http too (everything here is loopback http)."""

    def return_ok_secure(self, cookie, request):
        return True

    def set_ok_secure(self, cookie, request):  # not in every version; harmless
        return True


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # 3xx surfaces as an HTTPError: we follow by hand


class Forms(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._form = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action"), "method": a.get("method", "get").lower(),
                          "fields": [], "names": set()}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input":
            name = a.get("name")
            if not name:
                return
            self._form["names"].add(name)
            typ = a.get("type", "text").lower()
            if typ in ("submit", "button", "image", "reset", "file"):
                return
            if typ in ("checkbox", "radio") and "checked" not in a:
                return
            self._form["fields"].append([name, a.get("value", "on" if typ in ("checkbox", "radio") else "")])
        elif tag == "textarea" and a.get("name"):
            self._form["names"].add(a["name"])
            self._textarea = [a["name"], ""]
            self._form["fields"].append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(body):
    p = Forms()
    try:
        p.feed(body)
        p.close()
    except Exception:  # a broken page is just a page without forms
        pass
    return p.forms


class Browser:
    def __init__(self, jar_path):
        self.jar_path = jar_path
        self.jar = http.cookiejar.MozillaCookieJar(jar_path, policy=Policy())
        if jar_path and os.path.exists(jar_path) and os.path.getsize(jar_path) > 0:
            self.jar.load(ignore_discard=True, ignore_expires=True)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())
        self.opener.addheaders = [("User-Agent", "fedbridge-test-browser/1"),
                                  ("Accept", "text/html,application/xhtml+xml,*/*")]

    def save(self):
        if self.jar_path:
            self.jar.save(ignore_discard=True, ignore_expires=True)

    def request(self, url, fields=None):
        host = urllib.parse.urlsplit(url).hostname
        if host not in LOOPBACK:
            raise Stop(1, "refusing to visit a non-loopback URL: %s" % url)
        data = None
        if fields is not None:
            data = urllib.parse.urlencode([tuple(kv) for kv in fields]).encode()
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            resp = self.opener.open(req, timeout=30)
        except urllib.error.HTTPError as e:
            resp = e
        except (urllib.error.URLError, OSError) as e:
            raise Stop(1, "error %s: %s" % (url, getattr(e, "reason", e)))
        with resp:
            body = resp.read().decode("utf-8", "replace")
        return resp.code, resp.headers, body


class Stop(Exception):
    def __init__(self, rc, text):
        super().__init__(text)
        self.rc = rc
        self.text = text


def run(args):
    b = Browser(args.jar)
    try:
        return walk(b, args)
    finally:
        b.save()


def end(code, body, limit):
    text = "status %d\n%s" % (code, body if limit is None else body[:limit])
    return text


def walk(b, args):
    url = args.url
    fields = None
    if args.cmd == "post":
        fields = []
        for f in args.fields:
            if "=" not in f:
                raise Stop(2, "post fields are NAME=VALUE: %r" % f)
            fields.append(f.split("=", 1))
    login = args.cmd == "login"
    strict = login or args.stop is not None  # anything but the stop is a failure
    limit = 4000 if strict else None
    logged_in = False
    for _ in range(MAX_HOPS):
        code, headers, body = b.request(url, fields)
        fields = None
        if code in (301, 302, 303, 307, 308) and headers.get("Location"):
            nxt = urllib.parse.urljoin(url, headers["Location"])
            if args.stop is not None and nxt.startswith(args.stop):
                return 0, nxt
            if code in (307, 308) and args.cmd == "post":
                raise Stop(1, "status %d (307/308 after a POST is not followed)\nLocation: %s" % (code, nxt))
            url = nxt
            continue
        forms = parse_forms(body) if code == 200 else []
        saml = next((f for f in forms if f["method"] == "post" and
                     any(n in f["names"] for n in SAML_FIELDS)), None)
        if saml is not None:
            action = urllib.parse.urljoin(url, saml["action"] or "")
            values = dict(saml["fields"])
            if login and args.print_saml_response and "SAMLResponse" in values:
                if args.save_form:
                    with open(args.save_form, "w") as fh:
                        json.dump({"action": action, "fields": values}, fh, indent=1)
                return 0, values["SAMLResponse"]
            url, fields = action, saml["fields"]
            continue
        pw = next((f for f in forms if "password" in f["names"]), None) if login else None
        if pw is not None and not logged_in:
            out = [kv for kv in pw["fields"] if kv[0] not in ("username", "password")]
            out += [["username", args.user], ["password", args.password]]
            url = urllib.parse.urljoin(url, pw["action"] or "")
            fields = out
            logged_in = True
            continue
        if pw is not None:
            return 1, end(code, "(the login form again: wrong username or password?)\n" + body, limit)
        if strict:
            loc = headers.get("Location")
            extra = "Location: %s\n" % loc if loc else ""
            return 1, end(code, extra + body, limit)
        return 0, end(code, body, None)
    return 1, "status 0\nmore than %d hops, last URL %s" % (MAX_HOPS, url)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("login")
    lg.add_argument("--user", required=True)
    lg.add_argument("--password", required=True)
    lg.add_argument("--stop", required=True)
    lg.add_argument("--print-saml-response", action="store_true")
    lg.add_argument("--save-form")
    gt = sub.add_parser("get")
    gt.add_argument("--stop")
    ps = sub.add_parser("post")
    ps.add_argument("--stop")
    for p in (lg, gt, ps):
        p.add_argument("--jar", required=True)
        p.add_argument("url")
    ps.add_argument("fields", nargs="*")
    args = ap.parse_args(argv)
    try:
        rc, text = run(args)
    except Stop as s:
        rc, text = s.rc, s.text
    print(text)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
