// Signs a JWT with the npm jose library, as an independent implementation to
// prove interop. Reads one JSON object on stdin:
//   {"alg": "PS256", "privateJwk": {...}, "header": {...}, "claims": {...}}
// and prints the compact JWS on stdout.
import { SignJWT, importJWK } from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { alg, privateJwk, header = {}, claims } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const key = await importJWK(privateJwk, alg);
const jws = await new SignJWT(claims).setProtectedHeader({ ...header, alg }).sign(key);
process.stdout.write(jws + '\n');
