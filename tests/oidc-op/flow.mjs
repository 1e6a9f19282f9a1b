// The browser behind browser.mjs and logins.mjs: one cookie jar (kept in
// memory, or in a JSON file so several runs share it), redirects followed by
// hand across hosts, the provider's login form filled in, its logout page
// confirmed, and the self-posting forms of the SAML HTTP-POST binding
// submitted (what a browser's JavaScript would do).
//
// Cookies are kept by host and path, as RFC 6265 says (ports do not separate
// them); Secure and SameSite are ignored: everything here is http on loopback.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

// The first form of the page with its action and inputs (name -> value).
function parseForm(html, base) {
  const f = /<form([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!f) return null;
  const action = (/action="([^"]*)"/i.exec(f[1]) || [])[1] || base.href;
  const inputs = {};
  const unescape = (v) => v.replace(/&quot;/g, '"').replace(/&#0?39;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCharCode(Number(d))).replace(/&amp;/g, '&');
  for (const m of f[2].matchAll(/<input([^>]*)>/gi)) {
    const name = (/name="([^"]*)"/i.exec(m[1]) || [])[1];
    if (name) inputs[name] = unescape((/value="([^"]*)"/i.exec(m[1]) || [])[1] || '');
  }
  return { action: new URL(action.replace(/&amp;/g, '&'), base), inputs };
}

export class Browser {
  // jarFile: where the cookies persist between runs (none: in memory only)
  constructor(jarFile) {
    this.jarFile = jarFile;
    this.jar = jarFile && existsSync(jarFile) ? JSON.parse(readFileSync(jarFile, 'utf8')) : [];
  }

  save() {
    if (this.jarFile) writeFileSync(this.jarFile, JSON.stringify(this.jar));
  }

  store(url, setCookies) {
    const { jar } = this;
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path' && v) path = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const i = jar.findIndex((c) => c.host === url.hostname && c.path === path && c.name === name);
      if (i >= 0) jar.splice(i, 1);
      if (!expired) jar.push({ host: url.hostname, path, name, value });
    }
  }

  cookieHeader(url) {
    return this.jar.filter((c) => c.host === url.hostname && (url.pathname === c.path
        || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  async request(url, method = 'GET', body = undefined) {
    const headers = { cookie: this.cookieHeader(url) };
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.store(url, res.headers.getSetCookie());
    this.save();
    return res;
  }

  // cmd 'login' or 'logout' from start; opt: user, password, stop,
  // 'print-saml-response'. Returns { code, lines }: code 0 when it ended
  // where it should (lines: the redirect target, or the SAML form), else 1
  // with "status CODE" and the page.
  async run(cmd, opt, start) {
    let url = new URL(start);
    let method = 'GET';
    let body;
    let submittedLogin = false;
    for (let hop = 0; hop < 20; hop++) {
      const res = await this.request(url, method, body);
      method = 'GET';
      body = undefined;
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, url);
        if (opt.stop && next.href.startsWith(opt.stop)) return { code: 0, lines: [next.href] };
        url = next;
        continue;
      }
      const text = await res.text();
      const form = res.status === 200 ? parseForm(text, url) : null;
      if (cmd === 'login' && form && 'password' in form.inputs && !submittedLogin) {
        submittedLogin = true;
        form.inputs.username = opt.user;
        form.inputs.password = opt.password;
        url = form.action;
        method = 'POST';
        body = new URLSearchParams(form.inputs).toString();
        continue;
      }
      if (form && ('SAMLResponse' in form.inputs || 'SAMLRequest' in form.inputs)) {
        if (opt['print-saml-response'] && 'SAMLResponse' in form.inputs) {
          return { code: 0, lines: [form.inputs.SAMLResponse, form.inputs.RelayState || '', form.action.href] };
        }
        url = form.action;
        method = 'POST';
        body = new URLSearchParams(form.inputs).toString();
        continue;
      }
      if (cmd === 'logout' && form && 'xsrf' in form.inputs) {
        form.inputs.logout = 'yes';
        url = form.action;
        method = 'POST';
        body = new URLSearchParams(form.inputs).toString();
        continue;
      }
      return { code: cmd === 'logout' && res.status === 200 ? 0 : 1,
        lines: [`status ${res.status}`, text.slice(0, 4000)] };
    }
    return { code: 2, lines: ['more than 20 hops'] };
  }
}
