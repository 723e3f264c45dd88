#!/bin/sh
# Start the ComfyUI checkout mounted at $COMFYUI_DIR, listening on every interface of the container
# (compose publishes it on the host's loopback only). Extra ComfyUI flags come from $COMFYUI_ARGS
# (e.g. "--lowvram --preview-method none") and from the container's command.
set -eu

dir="${COMFYUI_DIR:-/opt/comfyui}"
if [ ! -f "$dir/main.py" ]; then
    echo "comfyui: no main.py in $dir: mount your ComfyUI checkout there (COMFYUI_DIR in docker/compose.yaml)" >&2
    exit 2
fi
cd "$dir"
# COMFYUI_ARGS is split on spaces on purpose: it holds several flags.
# shellcheck disable=SC2086
exec python3 main.py --listen 0.0.0.0 --port 8188 --disable-auto-launch ${COMFYUI_ARGS:-} "$@"
