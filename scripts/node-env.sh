# Sourced (sh): puts the Node.js that scripts/deps.sh brings into .deps/node,
# when the system's is too old, first on PATH. Needs root set to the checkout.
# Debian's own node trusts the system's certificate store; the official binary
# carries its own list, so it is pointed at the system's too (a local CA or a
# proxy's, added with update-ca-certificates, then works for npm as before).
fb_node_bin=$root/.deps/node/bin
if [ -x "$fb_node_bin/node" ]; then
	case ":$PATH:" in
	*":$fb_node_bin:"*) ;;
	*) PATH=$fb_node_bin:$PATH ;;
	esac
	export PATH
	if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
		NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
		export NODE_EXTRA_CA_CERTS
	fi
fi
