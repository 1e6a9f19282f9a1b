# Sourced (sh): puts the Node.js that scripts/deps.sh brings into .deps/node,
# when the system's is too old, first on PATH. Needs root set to the checkout.
fb_node_bin=$root/.deps/node/bin
if [ -x "$fb_node_bin/node" ]; then
	case ":$PATH:" in
	*":$fb_node_bin:"*) ;;
	*) PATH=$fb_node_bin:$PATH ;;
	esac
	export PATH
fi
