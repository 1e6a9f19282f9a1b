#!/bin/sh
# Creates every key and certificate installation-a.yaml and installation-b.yaml
# reference, in ./keys, the way the messenger's federation guide makes them:
# each installation has its own CA and issues, for each remote, a client
# certificate whose CN is that remote's installation name; the remote's relay
# presents it, and the issuing side checks it with its own CA. Each bridge
# has an EC P-256 signing key; its public JWKS is the file the other side
# trusts. Existing files are kept; private files are 0600.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p keys
cd keys

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# ca NAME: an installation's own CA.
ca() {
	[ -s "$1-ca.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1-ca.key" \
	    -out "$1-ca.pem" -days 3650 -subj "/CN=$1 federation CA" 2>/dev/null
	chmod 644 "$1-ca.pem"
}

# client ISSUER HOLDER: ISSUER's CA signs a client certificate with CN=installation_HOLDER,
# which HOLDER's relay presents to ISSUER's relay.
client() {
	out="$2-to-$1"
	if [ ! -s "$out.cert.pem" ]; then
		openssl req -new -newkey rsa:2048 -nodes -keyout "$out.key.pem" -out "$out.csr.pem" \
		    -subj "/CN=installation_$(echo "$2" | tr a-z A-Z)" 2>/dev/null
		openssl x509 -req -in "$out.csr.pem" -CA "$1-ca.pem" -CAkey "$1-ca.key" \
		    -CAcreateserial -out "$out.cert.pem" -days 365 2>/dev/null
		rm -f "$out.csr.pem"
	fi
	chmod 644 "$out.cert.pem"
}

# signing NAME: the bridge's P-256 key and its JWKS (kid = RFC 7638 thumbprint).
signing() {
	[ -s "$1-signing.pem" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1-signing.pem" 2>/dev/null
	if [ ! -s "$1.jwks" ]; then
		openssl pkey -in "$1-signing.pem" -pubout -outform DER | tail -c 64 >"$1.xy"
		x=$(head -c 32 "$1.xy" | b64url)
		y=$(tail -c 32 "$1.xy" | b64url)
		rm -f "$1.xy"
		kid=$(printf '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' "$x" "$y" |
		    openssl dgst -sha256 -binary | b64url)
		printf '{"keys":[{"kty":"EC","crv":"P-256","x":"%s","y":"%s","kid":"%s","alg":"ES256","use":"sig"}]}\n' \
		    "$x" "$y" "$kid" >"$1.jwks"
		chmod 644 "$1.jwks"
	fi
}

secret() { [ -s "$1" ] || openssl rand -hex 32 >"$1"; }

for side in a b; do
	ca "$side"
	signing "$side"
	secret "$side-fid.secret"
done
# server NAME DOMAIN: the relay's TLS server certificate for federation.DOMAIN.
server() {
	if [ ! -s "$1-relay.cert.pem" ]; then
		openssl req -new -newkey rsa:2048 -nodes -keyout "$1-relay.key.pem" \
		    -out "$1-relay.csr.pem" -subj "/CN=federation.$2" 2>/dev/null
		printf 'subjectAltName=DNS:federation.%s,IP:127.0.0.1\n' "$2" >"$1-relay.ext"
		openssl x509 -req -in "$1-relay.csr.pem" -CA "$1-ca.pem" -CAkey "$1-ca.key" \
		    -CAcreateserial -extfile "$1-relay.ext" -out "$1-relay.cert.pem" -days 365 \
		    2>/dev/null
		rm -f "$1-relay.csr.pem" "$1-relay.ext"
	fi
	chmod 644 "$1-relay.cert.pem"
}
server a a.example
server b b.example
client a b # b's relay presents b-to-a.cert.pem to a
client b a # a's relay presents a-to-b.cert.pem to b

# A's OpenID Connect client secret; B's SAML service provider key and IdP metadata.
secret a-keycloak.secret
[ -s b-sp.key ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout b-sp.key -out b-sp.crt \
    -days 365 -subj "/CN=sso.b.example" 2>/dev/null
if [ ! -s b-idp-metadata.xml ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -keyout b-idp.key -out b-idp.crt -days 365 \
	    -subj "/CN=idp.b.example" 2>/dev/null
	cert=$(sed '1d;$d' b-idp.crt | tr -d '\n')
	cat >b-idp-metadata.xml <<XML
<?xml version="1.0" encoding="UTF-8"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.b.example/saml2/idp/metadata.php">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>$cert</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.b.example/saml2/idp/SSOService.php"/>
  </IDPSSODescriptor>
</EntityDescriptor>
XML
fi
chmod 644 b-sp.crt b-idp-metadata.xml
echo "keys ready in $(pwd)"
