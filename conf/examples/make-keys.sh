#!/bin/sh
# Creates every key, certificate and secret the example configurations in
# this folder reference, under ./keys, the way an installation makes them:
# an EC signing key, a random fid secret and client secret, a SAML SP key
# pair, a relay CA with a client certificate (CN = the installation name),
# and the remote side's public keys as a JWKS file. Existing files are kept.
# Private files are written 0600: fedbridge refuses them otherwise.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p keys
cd keys

ec_key() { [ -s "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
random_secret() { [ -s "$1" ] || openssl rand -hex 32 >"$1"; }

ec_key signing-2026-11.pem
random_secret fid.secret
random_secret corp-keycloak.secret

# SAML service provider key pair, and a stand-in IdP metadata document.
[ -s sp.key ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout sp.key -out sp.crt \
    -days 365 -subj "/CN=sso.a.example" 2>/dev/null
if [ ! -s idp-metadata.xml ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout idp.key -out idp.crt \
        -days 365 -subj "/CN=adfs.a.example" 2>/dev/null
    cert=$(sed '1d;$d' idp.crt | tr -d '\n')
    cat >idp-metadata.xml <<XML
<?xml version="1.0" encoding="UTF-8"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://adfs.a.example/adfs/services/trust">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="true">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>$cert</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://adfs.a.example/adfs/ls/"/>
  </IDPSSODescriptor>
</EntityDescriptor>
XML
    chmod 644 idp-metadata.xml
fi

# Relay CA and the client certificate our relay presents to installation_B.
if [ ! -s ca.pem ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
        -subj "/CN=installation_A relay CA" 2>/dev/null
fi
if [ ! -s client_B.cert.pem ]; then
    openssl req -new -newkey rsa:2048 -nodes -keyout client_B.key.pem -out client_B.csr.pem \
        -subj "/CN=installation_A" 2>/dev/null
    openssl x509 -req -in client_B.csr.pem -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out client_B.cert.pem -days 365 2>/dev/null
    rm -f client_B.csr.pem
fi
# The CA installation_B handed over (here: a copy of ours stands in for it).
[ -s client_B.cacert.pem ] || cp ca.pem client_B.cacert.pem

# installation_B's public signing key as a JWKS (P-256: x and y from the DER SPKI).
if [ ! -s installation_B.jwks ]; then
    ec_key installation_B-signing.pem
    b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
    # The last 64 bytes of a P-256 SubjectPublicKeyInfo are x and y.
    openssl pkey -in installation_B-signing.pem -pubout -outform DER | tail -c 64 >xy.bin
    x=$(head -c 32 xy.bin | b64url)
    y=$(tail -c 32 xy.bin | b64url)
    rm -f xy.bin
    printf '{"keys":[{"kty":"EC","crv":"P-256","kid":"installation_B-1","use":"sig","alg":"ES256","x":"%s","y":"%s"}]}\n' "$x" "$y" >installation_B.jwks
fi
chmod 644 sp.crt ca.pem client_B.cert.pem client_B.cacert.pem installation_B.jwks 2>/dev/null || true
echo "keys ready in $(pwd)"
