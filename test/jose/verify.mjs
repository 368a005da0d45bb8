// Verifies a JWT as an upstream service would, with the npm jose library:
// the keys come from a remote JWKS (createRemoteJWKSet), fetched fresh by
// this process. Reads one JSON object on stdin:
//   {"jwksUrl": "http://…/.well-known/jwks.json", "token": "…", "issuer": "…", "audience": "…", "typ": "txntoken+jwt"}
// and prints {"ok": true, "kid": …, "payload": {…}} or
// {"ok": false, "code": "ERR_…", "message": "…"}; it exits 0 either way.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { jwksUrl, token, issuer, audience, typ } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const jwks = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, typ, algorithms: ['ES256', 'EdDSA'] });
  process.stdout.write(JSON.stringify({ ok: true, kid: protectedHeader.kid, payload }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, code: e.code ?? '', message: e.message }) + '\n');
}
