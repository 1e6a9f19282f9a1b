#!/bin/sh
# Writes fedbridge.yaml(5) to OUT from the configuration reference the
# binary prints (fedbridge check --reference), so the manual page and the
# loader share one schema. Usage: scripts/gen-man.sh FEDBRIDGE OUT
set -eu
fb=$1 out=$2
ref=$("$fb" check --reference)
{
	cat <<'ROFF'
.TH FEDBRIDGE.YAML 5 "" "fedbridge" "File Formats"
.SH NAME
fedbridge.yaml \- configuration of the fedbridge identity federation bridge
.SH DESCRIPTION
One YAML document.
.B fedbridge check \-c
.I FILE
validates it and every file it names, and reports each problem as
.IR file : line : column .
Relative paths resolve against the file's folder. Secret files must be
mode 0600 and owned by the user fedbridge runs as. Durations are written
like 90s, 5m, 1h30m or 7d; sizes like 8KiB.
A tenant's
.B trusts_dir
holds one trust per
.I NAME.yaml
file, as an item of
.B trusts
would be.
.SH KEYS
Each key with its type, the values allowed, its default and its meaning.
ROFF
	printf '%s\n' "$ref" | awk -F' [|] ' '
		NR <= 2 { next }
		{
			key = $1; sub(/^[|] /, "", key); gsub(/`/, "", key)
			type = $2; allowed = $3; def = $4; meaning = $5; sub(/ [|]$/, "", meaning)
			gsub(/\\/, "\\\\", meaning); gsub(/^[.]/, "\\\\\\&.", meaning)
			print ".TP"
			print ".B " key
			line = type
			if (allowed != "" && allowed != " ") line = line "; " allowed
			if (def == "required") line = line "; required"
			else if (def != "" && def != "-") line = line "; default: " def
			print "(" line ")"
			print ".br"
			print meaning
		}'
	cat <<'ROFF'
.SH FILES
.TP
.I /etc/fedbridge/fedbridge.yaml
the configuration the systemd unit serves
.TP
.I /etc/fedbridge/trusts.d/
trusts written by
.B fedbridge trust import
and
.B fedbridge import federation
.SH SEE ALSO
.BR fedbridge (1)
ROFF
} >"$out"
