#!/usr/bin/env bash
# slurm-cluster.sh: a single-node Slurm 22.05 cluster with slurmrestd (JWT)
# for the live tests of backends/slurm and the reference server.
#
#   scripts/slurm-cluster.sh start    install if needed, configure, start, wait, print the env
#   scripts/slurm-cluster.sh stop     cancel jobs, stop every daemon
#   scripts/slurm-cluster.sh status   one line per daemon; exit 0 only when all are up
#   scripts/slurm-cluster.sh env      print the env a test needs (mints a token)
#
# Usage in CI: eval "$(scripts/slurm-cluster.sh start)"
#
# start prints (on stdout, nothing else goes there):
#   export HORIZONS_SLURM_URL=http://127.0.0.1:6820
#   export HORIZONS_SLURM_USER=root
#   export HORIZONS_SLURM_TOKEN_FILE=$BASE/token      (the JWT, mode 600)
#   export HORIZONS_SLURM_PARTITION=debug
#   export HORIZONS_SLURM_RUNNER="$BASE/bin/horizons-agent run"   (when go is on PATH)
# The token itself is never printed. When go is on PATH, start (and env)
# also build this repository's cmd/horizons-agent into $BASE/bin, so
# `go run ./cmd/reference-server -backend slurm` needs nothing else.
#
# Settings (environment): HORIZONS_SLURM_BASE (default /var/lib/horizons-slurm:
# config, keys, state, logs), HORIZONS_SLURM_REST_ADDR (127.0.0.1:6820),
# HORIZONS_SLURM_CTLD_PORT (6817), HORIZONS_SLURM_SLURMD_PORT (6818),
# HORIZONS_SLURM_TOKEN_USER (root), HORIZONS_SLURM_TOKEN_LIFESPAN (86400 s),
# HORIZONS_SLURM_CPUS (16 scheduling slots, more than the machine's cores on
# purpose: test jobs are tiny), HORIZONS_SLURM_GPUS (4 GRES gpus without
# devices, so gres requests are scheduled and counted).
#
# Needs root (the daemons run as root, SlurmUser=root) and Debian/Ubuntu apt
# for the packages. Runs without systemd or cgroups (proctrack/linuxproc,
# task/none). Idempotent: a second start only checks and re-mints the token.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${HORIZONS_SLURM_BASE:-/var/lib/horizons-slurm}
REST_ADDR=${HORIZONS_SLURM_REST_ADDR:-127.0.0.1:6820}
CTLD_PORT=${HORIZONS_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${HORIZONS_SLURM_SLURMD_PORT:-6818}
TOKEN_USER=${HORIZONS_SLURM_TOKEN_USER:-root}
TOKEN_LIFESPAN=${HORIZONS_SLURM_TOKEN_LIFESPAN:-86400}
CPUS=${HORIZONS_SLURM_CPUS:-16}
GPUS=${HORIZONS_SLURM_GPUS:-4}
NODE=localnode
PARTITION=debug
PKGS=(munge slurmctld slurmd slurmrestd slurm-client slurm-wlm-jwt-plugin)

M=$BASE/m
LOG=$BASE/log
RUN=$BASE/run
export SLURM_CONF=$BASE/etc/slurm.conf
# A SLURM_JWT in the environment switches every Slurm command and daemon to
# auth/jwt, and slurmctld then dies with "AuthType change requires restart".
unset SLURM_JWT

say() { echo "slurm-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }

# alive NAME PIDFILE: the pid file names a live, non-zombie process whose
# command is NAME (PID 1 here reaps zombies late).
alive() {
  local name=$1 pidfile=$2 pid
  [ -r "$pidfile" ] || return 1
  pid=$(tr -dc 0-9 <"$pidfile" 2>/dev/null) || return 1
  pid_alive "$pid" "$name"
}

# pid_alive PID NAME: PID is a live, non-zombie process whose command is NAME.
pid_alive() {
  local pid=$1 name=$2 state comm
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [ "$comm" = "$name" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# wait_for WHAT SECONDS CMD...: poll CMD every 0.05 s.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 20; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  die "$what not ready after ${secs}s; see the logs in $LOG"
}

install_packages() {
  local missing=0 b
  for b in munged mungekey slurmctld slurmd slurmrestd scontrol sinfo squeue scancel; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing=1
  done
  ls /usr/lib/*/slurm-wlm/auth_jwt.so >/dev/null 2>&1 || missing=1
  ls /usr/lib/*/slurm-wlm/rest_auth_jwt.so >/dev/null 2>&1 || missing=1
  [ $missing = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "Slurm packages are missing and installing them needs root: apt-get install ${PKGS[*]}"
  command -v apt-get >/dev/null || die "Slurm packages are missing and there is no apt-get: install ${PKGS[*]}"
  say "installing ${PKGS[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d (if present) keeps the packaged services from starting; we
  # start our own daemons with our own config.
  if ! apt-get install -y -q --no-install-recommends "${PKGS[@]}" >"$BASE/apt.log" 2>&1; then
    apt-get update -q >>"$BASE/apt.log" 2>&1 || true
    apt-get install -y -q --no-install-recommends "${PKGS[@]}" >>"$BASE/apt.log" 2>&1 ||
      die "apt-get install ${PKGS[*]} failed; see $BASE/apt.log"
  fi
}

write_if_changed() { # FILE: stdin replaces FILE only when it differs
  local f=$1 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  mv -f "$tmp" "$f"
  return 0
}

configure() {
  mkdir -p "$BASE/etc" "$M" "$LOG" "$RUN" "$BASE/state" "$BASE/spool/slurmd-$NODE" "$BASE/jobs" "$BASE/dev"
  local g
  for ((g = 0; g < GPUS; g++)); do [ -e "$BASE/dev/gpu$g" ] || : >"$BASE/dev/gpu$g"; done
  chmod 755 "$BASE" "$M" # munged refuses a socket directory without o+x
  chmod 1777 "$BASE/jobs"
  if [ ! -s "$M/munge.key" ]; then
    mungekey -c -k "$M/munge.key" 2>/dev/null || dd if=/dev/urandom of="$M/munge.key" bs=1024 count=1 status=none
  fi
  chmod 600 "$M/munge.key"
  if [ ! -s "$BASE/etc/jwt_hs256.key" ]; then
    (umask 077 && dd if=/dev/urandom of="$BASE/etc/jwt_hs256.key" bs=32 count=1 status=none)
  fi
  chmod 600 "$BASE/etc/jwt_hs256.key"
  local host gres="" gresline=""
  host=$(hostname -s 2>/dev/null || hostname)
  if [ "$GPUS" -gt 0 ]; then
    gres="GresTypes=gpu"
    gresline=" Gres=gpu:$GPUS"
  fi
  local gresconf="# Written by scripts/slurm-cluster.sh. The GPUs are placeholder files, not
# devices: Slurm schedules and counts them (task/none binds nothing)."
  [ "$GPUS" -gt 0 ] && gresconf+=$'\n'"NodeName=$NODE Name=gpu File=$BASE/dev/gpu[0-$((GPUS - 1))]"
  if write_if_changed "$BASE/etc/gres.conf" <<<"$gresconf"; then CONF_CHANGED=1; fi
  # The node is called $NODE whatever the machine's hostname ($host), so a
  # renamed machine keeps its state; every address is loopback.
  if write_if_changed "$SLURM_CONF" <<EOF; then CONF_CHANGED=1; fi
# Written by scripts/slurm-cluster.sh (machine $host). Do not edit: start rewrites it.
ClusterName=horizons
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$M/munge.sock
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$BASE/etc/jwt_hs256.key
CredType=cred/munge
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool/slurmd-%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$gres
ReturnToService=2
MailProg=/bin/true
MinJobAge=600
KillWait=2
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$CPUS RealMemory=16000$gresline State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# start_daemon NAME PIDFILE CMD...: start CMD detached unless NAME runs.
start_daemon() {
  local name=$1 pidfile=$2
  shift 2
  alive "$name" "$pidfile" && return 0
  rm -f "$pidfile"
  (cd "$BASE/jobs" && exec setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1) &
  STARTED="$STARTED $name"
}

ctld_up() { scontrol ping 2>/dev/null | grep -q ' is UP'; }
node_up() {
  local s
  s=$(sinfo -h -n "$NODE" -o %t 2>/dev/null) || return 1
  case $s in idle* | mix* | alloc*) return 0 ;; esac
  # A node left down or drained by an earlier run comes back here.
  case $s in down* | drain* | fail*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;; esac
  return 1
}

token_file() {
  local tok
  tok=$(scontrol token username="$TOKEN_USER" lifespan="$TOKEN_LIFESPAN" 2>>"$LOG/token.err") ||
    die "scontrol token failed; see $LOG/token.err"
  tok=${tok#SLURM_JWT=}
  (umask 077 && printf '%s\n' "$tok" >"$BASE/token.tmp") && mv -f "$BASE/token.tmp" "$BASE/token"
}

rest_up() {
  curl -fsS -o /dev/null -H "X-SLURM-USER-NAME: $TOKEN_USER" -H "X-SLURM-USER-TOKEN: $(cat "$BASE/token")" \
    "http://$REST_ADDR/slurm/v0.0.38/ping"
}

# build_runner: the agent runner the batch jobs execute, from this
# repository, when go is available (incremental: about a second when the
# build cache is warm).
build_runner() {
  RUNNER=""
  local repo=$REPO
  command -v go >/dev/null 2>&1 && [ -f "$repo/cmd/horizons-agent/main.go" ] || return 0
  mkdir -p "$BASE/bin"
  if (cd "$repo" && CGO_ENABLED=0 go build -o "$BASE/bin/horizons-agent.tmp" ./cmd/horizons-agent) >"$LOG/runner-build.log" 2>&1; then
    mv -f "$BASE/bin/horizons-agent.tmp" "$BASE/bin/horizons-agent"
    chmod 755 "$BASE/bin" "$BASE/bin/horizons-agent"
    RUNNER="$BASE/bin/horizons-agent run"
  else
    say "warning: go build ./cmd/horizons-agent failed (see $LOG/runner-build.log); HORIZONS_SLURM_RUNNER not set"
  fi
}

print_env() {
  [ -n "${RUNNER:-}" ] && printf 'export HORIZONS_SLURM_RUNNER=%q\n' "$RUNNER"
  cat <<EOF
export HORIZONS_SLURM_URL=http://$REST_ADDR
export HORIZONS_SLURM_USER=$TOKEN_USER
export HORIZONS_SLURM_TOKEN_FILE=$BASE/token
export HORIZONS_SLURM_PARTITION=$PARTITION
EOF
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "start needs root (SlurmUser=root)"
  mkdir -p "$BASE"
  install_packages
  command -v curl >/dev/null || die "curl is needed to check slurmrestd"
  CONF_CHANGED=0
  STARTED=""
  configure
  cd "$BASE/jobs" # daemons and commands write slurm-N.out into their cwd
  start_daemon munged "$M/munged.pid" munged -F --key-file="$M/munge.key" --socket="$M/munge.sock" \
    --pid-file="$M/munged.pid" --seed-file="$M/munged.seed" --log-file="$LOG/munged.log"
  wait_for munged 10 bash -c "munge -n -S '$M/munge.sock' | unmunge -S '$M/munge.sock'"
  if [ "$CONF_CHANGED" = 1 ] && alive slurmctld "$RUN/slurmctld.pid"; then
    say "slurm.conf changed: restarting the cluster"
    stop_daemons
    start_daemon munged "$M/munged.pid" munged -F --key-file="$M/munge.key" --socket="$M/munge.sock" \
      --pid-file="$M/munged.pid" --seed-file="$M/munged.seed" --log-file="$LOG/munged.log"
    wait_for munged 10 bash -c "munge -n -S '$M/munge.sock' | unmunge -S '$M/munge.sock'"
  fi
  start_daemon slurmctld "$RUN/slurmctld.pid" slurmctld -D -f "$SLURM_CONF"
  wait_for slurmctld 20 ctld_up
  start_daemon slurmd "$RUN/slurmd.pid" slurmd -D -N "$NODE" -f "$SLURM_CONF"
  wait_for "slurmd (node $NODE)" 30 node_up
  token_file
  if ! alive slurmrestd "$RUN/slurmrestd.pid"; then
    rm -f "$RUN/slurmrestd.pid"
    (cd "$BASE/jobs" && SLURM_JWT=daemon SLURMRESTD_SECURITY=disable_user_check exec setsid slurmrestd -f "$SLURM_CONF" \
      -s openapi/v0.0.36,openapi/v0.0.37,openapi/v0.0.38 -a rest_auth/jwt "$REST_ADDR" \
      </dev/null >>"$LOG/slurmrestd.log" 2>&1) &
    echo $! >"$RUN/slurmrestd.pid"
    STARTED="$STARTED slurmrestd"
  fi
  wait_for "slurmrestd on $REST_ADDR" 20 rest_up
  build_runner
  [ -n "$STARTED" ] && say "started:$STARTED (logs in $LOG)" || say "already running (logs in $LOG)"
  print_env
}

# stop_one NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL.
stop_one() {
  local name=$1 pidfile=$2 pid i
  alive "$name" "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(tr -dc 0-9 <"$pidfile" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    pid_alive "$pid" "$name" || { rm -f "$pidfile"; return 0; }
    sleep 0.05
  done
  say "$name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

stop_daemons() {
  stop_one slurmrestd "$RUN/slurmrestd.pid"
  stop_one slurmd "$RUN/slurmd.pid"
  stop_one slurmctld "$RUN/slurmctld.pid"
}

cmd_stop() {
  cd "$BASE" 2>/dev/null || { say "nothing to stop ($BASE does not exist)"; return 0; }
  if alive slurmctld "$RUN/slurmctld.pid" && [ "${1:-}" != --keep-jobs ]; then
    scancel --full --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.05
    done
  fi
  stop_daemons
  stop_one munged "$M/munged.pid"
  say "stopped"
}

cmd_status() {
  local ok=0 name pidfile
  for pair in "munged:$M/munged.pid" "slurmctld:$RUN/slurmctld.pid" "slurmd:$RUN/slurmd.pid" "slurmrestd:$RUN/slurmrestd.pid"; do
    name=${pair%%:*}
    pidfile=${pair#*:}
    if alive "$name" "$pidfile"; then
      echo "$name: running (pid $(tr -dc 0-9 <"$pidfile"))"
    else
      echo "$name: stopped"
      ok=1
    fi
  done
  if [ $ok = 0 ] && [ -s "$BASE/token" ] && rest_up 2>/dev/null; then
    echo "slurmrestd: answers on http://$REST_ADDR"
  elif [ $ok = 0 ]; then
    echo "slurmrestd: does not answer on http://$REST_ADDR"
    ok=1
  fi
  return $ok
}

cmd_env() {
  alive slurmctld "$RUN/slurmctld.pid" || die "the cluster is not running: run $0 start"
  cd "$BASE/jobs"
  token_file
  build_runner
  print_env
}

case ${1:-} in
start) cmd_start ;;
stop) shift; cmd_stop "$@" ;;
status) cmd_status ;;
env) cmd_env ;;
*)
  echo "usage: $0 start|stop [--keep-jobs]|status|env" >&2
  exit 2
  ;;
esac
