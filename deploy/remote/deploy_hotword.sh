#!/bin/sh
# Apply a waketrain model bundle on the board: verify, unpack, swap, restart, check, roll back.
#
#   DEPLOY_PATH=/opt/waketrain sh deploy_hotword.sh /path/to/<stamp>-<model_id>.tar.gz
#
# Needs only a POSIX shell, tar, gzip, sha256sum and GNU mv (-T) on the board.
# Settings (environment):
#   DEPLOY_PATH            deploy root (required); releases/, current and incoming/ live here.
#                          tars-compose: the py-tars checkout (models/openwakeword/, .env).
#   DEPLOY_TARGET          detector (default) | tars-compose
#   DEPLOY_POST_COMMAND    run after each swap (tars-compose default: recreate wake-activation)
#   DEPLOY_HEALTH_COMMAND  run after the post command; non-zero exit means roll back
#   DEPLOY_KEEP_RELEASES   releases to keep, current and previous included (default 3)
# Exit codes: 0 applied; 1 refused before any change; 3 failed after the swap and rolled back;
# 4 failed and the rollback failed too (the board needs a person).
set -eu

say() { printf '%s\n' "deploy_hotword: $*"; }
refuse() { say "refused: $*" >&2; exit 1; }

[ $# -eq 1 ] || refuse "usage: DEPLOY_PATH=DIR sh deploy_hotword.sh BUNDLE.tar.gz"
bundle=$1
root=${DEPLOY_PATH:?set DEPLOY_PATH to the deploy folder on the board}
target=${DEPLOY_TARGET:-detector}
keep=${DEPLOY_KEEP_RELEASES:-3}
case $target in
  detector) default_post="" ;;
  tars-compose) default_post="docker compose -f ops/compose.yml up -d --force-recreate wake-activation" ;;
  *) refuse "DEPLOY_TARGET is '$target'; use detector or tars-compose" ;;
esac
post=${DEPLOY_POST_COMMAND-$default_post}
health=${DEPLOY_HEALTH_COMMAND-}
case $keep in '' | *[!0-9]*) refuse "DEPLOY_KEEP_RELEASES must be a number" ;; esac
[ "$keep" -ge 2 ] || keep=2 # rollback needs the previous release

[ -f "$bundle" ] || refuse "no bundle at $bundle"
[ -f "$bundle.sha256" ] || refuse "no checksum file $bundle.sha256 beside the bundle"
expected=$(cut -d ' ' -f 1 "$bundle.sha256")
actual=$(sha256sum "$bundle" | cut -d ' ' -f 1)
[ "$expected" = "$actual" ] || refuse "checksum mismatch (expected $expected, got $actual): the bundle is damaged or incomplete"
say "checksum ok ($actual)"

[ -d "$root" ] || refuse "DEPLOY_PATH $root does not exist"
mkdir -p "$root/releases" || refuse "cannot create $root/releases (permissions?)"
staging=$(mktemp -d "$root/releases/.staging.XXXXXX") || refuse "cannot write in $root/releases (permissions or full disk?)"
trap 'rm -rf "$staging"' EXIT
tar -xzf "$bundle" -C "$staging" || refuse "cannot unpack the bundle into $root/releases (full disk?)"
model_id=$(sed -n 's/^MODEL_ID=//p' "$staging/bundle.env" 2>/dev/null || true)
case $model_id in '' | .* | *[!A-Za-z0-9._-]*) refuse "the bundle has no valid MODEL_ID in bundle.env" ;; esac
backend=$(sed -n 's/^BACKEND=//p' "$staging/bundle.env")
[ -f "$staging/model/wake_model.onnx" ] || refuse "the bundle has no model/wake_model.onnx"
if [ "$target" = tars-compose ] && [ "$backend" != oww_head ]; then
  refuse "tars-compose runs openWakeWord heads only; this model's backend is '$backend'"
fi

release="$root/releases/$model_id"
if [ -d "$release" ]; then
  say "release $model_id is already on the board; replacing its files"
  rm -rf "$release.old" && mv "$release" "$release.old"
fi
mv "$staging/model" "$release" || refuse "cannot place the release (full disk?)"
# Each release keeps its bundle, so any kept release can be re-applied offline.
cp "$staging/bundle.env" "$release/bundle.env"
{ cp "$bundle" "$release/bundle.tar.gz" && cp "$bundle.sha256" "$release/bundle.tar.gz.sha256"; } ||
  refuse "cannot copy the bundle into the release (full disk?)"
rm -rf "$release.old"
# Uploads staged by the service are not needed twice; a USB stick's copy is left alone.
case $(cd "$(dirname "$bundle")" && pwd -P) in
  "$(cd "$root" && pwd -P)/incoming") rm -f "$bundle" "$bundle.sha256" ;;
esac

previous=$(readlink "$root/current" 2>/dev/null || true)
[ "$previous" = "releases/$model_id" ] && previous=""

# The atomic switch: a new symlink renamed over the old one.
point_current_at() {
  ln -sfn "$1" "$root/.current.new" && mv -T "$root/.current.new" "$root/current"
}

# tars-compose: the model goes where py-tars mounts it, and .env names it.
env_file="$root/.env"
env_backup="$root/.env.waketrain-previous"
apply_tars_env() {
  name="$1.onnx"
  # set -e does not apply inside an `if` condition, so each step says how it fails.
  mkdir -p "$root/models/openwakeword" || return 1
  cp "$root/releases/$1/wake_model.onnx" "$root/models/openwakeword/.$name.tmp" || return 1
  mv "$root/models/openwakeword/.$name.tmp" "$root/models/openwakeword/$name" || return 1
  # py-tars reads these from its .env: the model, and our threshold and refractory period.
  threshold=$(sed -n 's/^THRESHOLD=//p' "$root/releases/$1/bundle.env")
  retrigger=$(sed -n 's/^REFRACTORY_SECONDS=//p' "$root/releases/$1/bundle.env")
  [ -f "$env_file" ] || : >"$env_file"
  grep -v -e '^WAKE_MODEL_PATH=' -e '^WAKE_DETECTION_THRESHOLD=' -e '^WAKE_MIN_RETRIGGER_SEC=' \
    "$env_file" >"$env_file.new" || true
  {
    echo "WAKE_MODEL_PATH=/models/openwakeword/$name"
    [ -z "$threshold" ] || echo "WAKE_DETECTION_THRESHOLD=$threshold"
    [ -z "$retrigger" ] || echo "WAKE_MIN_RETRIGGER_SEC=$retrigger"
  } >>"$env_file.new" || return 1
  mv "$env_file.new" "$env_file"
}

switch_to() {
  point_current_at "releases/$1" || return 1
  if [ "$target" = tars-compose ]; then apply_tars_env "$1" || return 1; fi
}

run_post() {
  [ -n "$post" ] || return 0
  say "post command: $post"
  (cd "$root" && sh -c "$post")
}

run_health() {
  model="$root/current/wake_model.onnx"
  [ -s "$model" ] || { say "health: $model is missing or empty" >&2; return 1; }
  if [ -n "$health" ]; then
    say "health command: $health"
    (cd "$root" && sh -c "$health")
  elif command -v python3 >/dev/null 2>&1 && python3 -c 'import onnxruntime' 2>/dev/null; then
    python3 - "$model" <<'EOF'
import sys
import numpy as np
import onnxruntime as ort

# Load the model and score one second of silence (or one silent embedding window).
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
inputs = {}
for spec in session.get_inputs():
    dims = [d if isinstance(d, int) else 1 for d in spec.shape]
    if len(dims) == 2 and not isinstance(spec.shape[1], int):
        dims[1] = 16000
    inputs[spec.name] = np.zeros(dims, np.float32)
scores = session.run(None, inputs)[0]
assert np.all(np.isfinite(scores)), "the model scores silence as NaN"
print(f"deploy_hotword: health: the model loads and scores silence at {float(scores.max()):.4f}")
EOF
  else
    say "health: no onnxruntime on the board; checked that the model file is there"
  fi
}

if [ "$target" = tars-compose ] && [ -f "$env_file" ]; then cp "$env_file" "$env_backup"; fi
say "switching current to releases/$model_id${previous:+ (previous: $previous)}"
if switch_to "$model_id" && run_post && run_health; then
  # Prune old releases, never current or previous.
  # shellcheck disable=SC2012 # release names are [A-Za-z0-9._-]; ls -t gives the age order
  ls -1t "$root/releases" | tail -n "+$((keep + 1))" | while read -r old; do
    if [ "releases/$old" != "$previous" ] && [ "$old" != "$model_id" ]; then
      rm -rf "${root:?}/releases/$old" && say "pruned releases/$old"
    fi
  done
  say "applied $model_id"
  exit 0
fi

say "apply failed; rolling back" >&2
if [ -z "$previous" ]; then
  rm -f "$root/current"
  [ ! -f "$env_backup" ] || mv "$env_backup" "$env_file"
  say "there was no previous release; current removed" >&2
  exit 3
fi
point_current_at "$previous" || { say "ROLLBACK FAILED: cannot repoint current" >&2; exit 4; }
[ ! -f "$env_backup" ] || mv "$env_backup" "$env_file"
if [ "$target" = tars-compose ]; then
  prev_id=${previous#releases/}
  [ -f "$root/models/openwakeword/$prev_id.onnx" ] || apply_tars_env "$prev_id"
fi
run_post || { say "ROLLBACK: the post command failed again on $previous" >&2; exit 4; }
say "rolled back to $previous" >&2
exit 3
