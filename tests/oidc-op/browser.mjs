// A scripted browser for fedbridge's end-to-end login tests, on the command
// line (the browser itself is flow.mjs).
//
//   node browser.mjs login --jar JAR --user U --password P --stop PREFIX URL
//       prints the first redirect target that starts with PREFIX (exit 0);
//       any other end prints "status CODE" and the page (exit 1)
//       --print-saml-response 1: at the SAML POST form, print SAMLResponse, RelayState
//       and the form's action (one a line) instead of posting it (exit 0)
//   node browser.mjs logout --jar JAR URL
//       RP-initiated logout at the provider: confirms and follows to the end (exit 0 on 200)
import { Browser } from './flow.mjs';

const args = process.argv.slice(2);
const cmd = args.shift();
const opt = {};
while (args.length > 1 && args[0].startsWith('--')) opt[args.shift().slice(2)] = args.shift();

const { code, lines } = await new Browser(opt.jar).run(cmd, opt, args[0]);
(code === 2 ? console.error : console.log)(lines.join('\n'));
process.exitCode = code;
