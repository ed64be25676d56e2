#!/bin/sh
# The official image's template rendering: every NGINX_ENVSUBST_TEMPLATE_DIR/**/*.template
# becomes NGINX_ENVSUBST_OUTPUT_DIR/**/* with only the variables set in the environment
# substituted (nginx's own $variables stay), as the official 20-envsubst-on-templates.sh does.
set -e
template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
    echo "$0: ERROR: $template_dir exists, but $output_dir is not writable"
    exit 0
fi
defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
find "$template_dir" -follow -type f -name "*$suffix" | while read -r template; do
    relative=${template#"$template_dir/"}
    output=$output_dir/${relative%"$suffix"}
    mkdir -p "$(dirname "$output")"
    echo "$0: envsubst $template -> $output"
    envsubst "$defined" <"$template" >"$output"
done
