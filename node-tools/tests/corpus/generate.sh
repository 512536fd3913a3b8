#!/usr/bin/env bash
# Regenerates the MariaDB files of this corpus with a real mariadbd (unix socket only, no TCP):
#   flock /tmp/raftmha-real.lock node-tools/tests/corpus/generate.sh node-tools/tests/corpus/mariadb
# One server run per variant: checksums on, checksums off, compressed events, encrypted binlog.
set -euo pipefail
out=$(realpath "${1:?usage: generate.sh OUT_DIR}")
mkdir -p "$out"
work=$(mktemp -d /tmp/binlog-corpus.XXXXXX)
trap 'rm -rf "$work"' EXIT

asroot=(); [ "$(id -u)" = 0 ] && asroot=(--user=root)

run_variant() {
  local name=$1; shift
  local dd=$work/$name
  mkdir -p "$dd"
  mariadb-install-db --no-defaults --datadir="$dd/data" --auth-root-authentication-method=normal \
    --skip-test-db "${asroot[@]}" >/dev/null
  mariadbd --no-defaults "${asroot[@]}" --datadir="$dd/data" --socket="$dd/sock" --skip-networking \
    --pid-file="$dd/pid" --log-error="$dd/err.log" --server-id=16 --log-bin="$dd/data/$name" \
    --binlog-format=MIXED --innodb-buffer-pool-size=16M --innodb-log-file-size=8M "$@" &
  local pid=$!
  # Stop this server however the run ends.
  trap "kill $pid 2>/dev/null; rm -rf '$work'" EXIT
  for _ in $(seq 100); do [ -S "$dd/sock" ] && break; sleep 0.2; done
  mariadb --no-defaults -S "$dd/sock" -uroot <<'SQL'
RESET MASTER;
CREATE DATABASE corpus;
USE corpus;
CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(255)) ENGINE=InnoDB;
CREATE TABLE m (id INT) ENGINE=MyISAM;
INSERT INTO t VALUES (1, 'one'), (2, 'two');
BEGIN; INSERT INTO t VALUES (3, REPEAT('x', 60)); UPDATE t SET v = 'deux' WHERE id = 2; COMMIT;
SET @u = 'user var'; INSERT INTO t VALUES (4, @u);
INSERT INTO t VALUES (5, UUID());
INSERT INTO m VALUES (RAND() * 0 + 7);
CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO a VALUES (NULL), (NULL);
SET SESSION binlog_format = 'ROW';
DELETE FROM t WHERE id = 1;
SET SESSION binlog_format = 'STATEMENT';
UPDATE t SET v = CONCAT(v, ' and a rather long statement text to exceed compression thresholds') WHERE id > 1;
XA START 'x1'; INSERT INTO t VALUES (9, 'xa'); XA END 'x1'; XA PREPARE 'x1'; XA COMMIT 'x1';
BEGIN; INSERT INTO t VALUES (10, 'rolled'); ROLLBACK;
DROP TABLE m;
FLUSH BINARY LOGS;
SQL
  mariadb-admin --no-defaults -S "$dd/sock" -uroot shutdown
  wait "$pid" || true
  cp "$dd/data/$name.000001" "$out/$name.000001"
}

run_variant mariadb-crc32 --binlog-checksum=CRC32
run_variant mariadb-nocrc --binlog-checksum=NONE
run_variant mariadb-compressed --binlog-checksum=CRC32 --log-bin-compress=ON \
  --log-bin-compress-min-len=10
# A throwaway key file: the encrypted file is only ever meant to be refused.
keys=$work/keys.txt
printf '1;%s\n' "$(printf '%064d' 16)" > "$keys"
run_variant mariadb-encrypted --binlog-checksum=CRC32 --plugin-load-add=file_key_management \
  --file-key-management-filename="$keys" --encrypt-binlog=ON
ls -l "$out"
