#!/usr/bin/env bash
# Generates >= 1 GiB of real MariaDB relay logs for `raftmha-node bench`, through a 2-node
# sandbox: hundreds of thousands of small transactions plus large multi-row transactions.
# Usage: make_bench_data.sh [DIR] [RAFTMHA_BIN]   (default /tmp/rmha-node/benchdata)
# Afterwards: raftmha-node bench --dir DIR/node2/data --binlog-dir DIR/node1/data
# The sandbox is stopped at the end (only the processes it started).
set -euo pipefail
DIR=${1:-/tmp/rmha-node/benchdata}
RAFTMHA=${2:-raftmha}
SMALL=${SMALL:-600000}
BIG=${BIG:-11}
rm -rf "$DIR"
"$RAFTMHA" sandbox up --dir "$DIR" --nodes 2 --base-ip 127.0.36.10 --timeout 120
trap '"$RAFTMHA" sandbox down --dir "$DIR"' EXIT
M="mariadb --no-defaults -S $DIR/node1/mariadbd.sock -uroot"
R="mariadb --no-defaults -S $DIR/node2/mariadbd.sock -uroot"
# Speed up generation only; the bytes written are the same.
for X in "$M" "$R"; do
  $X -e "SET GLOBAL sync_binlog=0; SET GLOBAL innodb_flush_log_at_trx_commit=0"
done
$M <<'SQL'
CREATE DATABASE bench;
CREATE TABLE bench.small (id INT PRIMARY KEY, v VARCHAR(100), n INT) ENGINE=InnoDB;
CREATE TABLE bench.big (id INT PRIMARY KEY, v VARCHAR(1000)) ENGINE=InnoDB;
DELIMITER //
CREATE PROCEDURE bench.smalls(n INT) BEGIN DECLARE i INT DEFAULT 0;
  WHILE i < n DO INSERT INTO bench.small VALUES (i, REPEAT('s', 20 + i % 60), i); SET i = i + 1; END WHILE; END //
DELIMITER ;
SQL
$M -e "CALL bench.smalls($SMALL)"
for b in $(seq 1 "$BIG"); do
  $M -e "INSERT INTO bench.big SELECT seq + $b * 1000000, REPEAT('b', 900) FROM bench.seq_1_to_100000"
done
$M -e "UPDATE bench.small SET n = n + 1 WHERE id < 100000"
# Wait for the replica to read everything.
for i in $(seq 1 600); do
  read -r F P < <($M -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
  read -r RF RP < <($R -e "SHOW SLAVE STATUS\G" | awk '/ Master_Log_File:/{f=$2} /Read_Master_Log_Pos:/{p=$2} END{print f, p}')
  [ "$F" = "$RF" ] && [ "$P" = "$RP" ] && break
  sleep 1
done
du -shc "$DIR"/node2/data/relay.0* | tail -1
