# Sourced by benches/peers.sh and benches/gradcheck_peers.sh (ROOT set to the
# repository first).
#
#   peer_setup "MODULES" "PACKAGES"
#
# Finds the read-only peer folder (PEERS_DIR, else ../shared/bench/peers next
# to the repository, else /work/shared/bench/peers), installs PACKAGES with pip
# if `import MODULES` fails, and copies the folder to a temporary directory,
# removed on exit. Sets PEERS_DIR, PY (python3) and WORK (the copy is
# $WORK/peers).
peer_setup() {
  local modules=$1 packages=$2 d
  PEERS_DIR=${PEERS_DIR:-}
  if [ -z "$PEERS_DIR" ]; then
    for d in "$ROOT/../shared/bench/peers" /work/shared/bench/peers; do
      [ -d "$d" ] && PEERS_DIR=$d && break
    done
  fi
  [ -d "${PEERS_DIR:-}" ] || { echo "peer folder not found; set PEERS_DIR" >&2; exit 1; }
  PY=$(command -v python3)
  if ! "$PY" -c "import $modules" 2>/dev/null; then
    echo "installing $packages" >&2
    # shellcheck disable=SC2086 # a list of package names
    "$PY" -m pip install --quiet $packages
  fi
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  cp -r "$PEERS_DIR" "$WORK/peers"
  chmod -R u+w "$WORK/peers"
}
