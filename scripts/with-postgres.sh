#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster listening on a loopback
# port, exporting STEPGATE_TEST_POSTGRES_DSN for it; the cluster is stopped
# and deleted when the command ends, however it ends.
#
#   scripts/with-postgres.sh go test ./...
set -euo pipefail

pg_bin() {
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bin=$(pg_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "with-postgres: installing PostgreSQL from Debian packages" >&2
	scripts/install-deps.sh postgresql
	bin=$(pg_bin)
fi

dir=$(mktemp -d -t stepgate-pg.XXXXXX)
as_owner=()
if [ "$(id -u)" = 0 ]; then
	# PostgreSQL refuses to run as root; the Debian package creates this user.
	chown postgres: "$dir"
	as_owner=(runuser -u postgres --)
fi

# A free loopback port: nothing answers on it. Candidates come from below
# the kernel's ephemeral range, where the test suite's own outgoing
# connections take their local ports: a port one of them holds answers
# nothing, yet cannot be bound.
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
	local candidate
	for _ in $(seq 50); do
		candidate=$((20000 + RANDOM % (ephemeral_low - 20000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
			echo "$candidate"
			return 0
		fi
	done
	echo "with-postgres: no free port found" >&2
	return 1
}

cleanup() {
	"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
# Durability is irrelevant for a throwaway test cluster; speed is not. A
# port taken between the check and the start (another process bound it)
# is tried again on another port.
started=""
for _ in 1 2 3 4 5; do
	port=$(free_port) || exit 1
	if "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >/dev/null; then
		started=1
		break
	fi
	grep -q "could not bind\|Address already in use" "$dir/server.log" || break
	echo "with-postgres: port $port was taken; trying another" >&2
	: >"$dir/server.log"
done
if [ -z "$started" ]; then
	cat "$dir/server.log" >&2
	exit 1
fi

export STEPGATE_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export STEPGATE_REQUIRE_POSTGRES=1
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
