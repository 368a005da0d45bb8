// Makes a DPoP proof (RFC 9449) with the npm jose library, the way a DPoP
// client built on jose does, as an independent implementation to prove
// interop. Reads one JSON object on stdin:
//   {"alg": "ES256", "privateJwk": {...}, "header": {...}, "claims": {...},
//    "accessToken": "..."}
// header (optional) adds protected header members to alg, typ and jwk, and
// may replace typ and jwk; accessToken is optional. Prints one JSON object:
//   {"proof": "<compact JWS>", "jkt": "<RFC 7638 SHA-256 thumbprint>",
//    "ath": "<base64url SHA-256 of accessToken>"}
// A claims "ath" of true is replaced by the computed ath before signing.
import { createHash, createPublicKey } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, importJWK } from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { alg, privateJwk, header, claims, accessToken } = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const privateKey = await importJWK(privateJwk, alg);
// The public key is derived from the private one, not copied from the JWK
// with the private members dropped.
const jwk = await exportJWK(createPublicKey({ key: privateJwk, format: 'jwk' }));
for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) {
  if (member in jwk) throw new Error(`dpop.mjs: public JWK has private member ${member}`);
}
const jkt = await calculateJwkThumbprint(jwk, 'sha256');

let ath;
if (typeof accessToken === 'string') {
  ath = createHash('sha256').update(accessToken, 'utf8').digest('base64url');
}
const payload = { ...claims };
if (payload.ath === true) {
  if (ath === undefined) throw new Error('dpop.mjs: claims.ath is true but no accessToken was given');
  payload.ath = ath;
}

const proof = await new SignJWT(payload)
  .setProtectedHeader({ typ: 'dpop+jwt', jwk, ...header, alg })
  .sign(privateKey);
process.stdout.write(JSON.stringify({ proof, jkt, ath }) + '\n');
