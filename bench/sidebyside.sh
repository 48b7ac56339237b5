# Sourced by the benchmarks that compare atelierd configurations side by side: one
# server per entry of a "label=settings;label=settings" list, all up at once, each on
# its own port. Settings are atelierd flags, optionally led by environment variables
# (GOGC=400 --gc-heap-floor-mib 0). GOGC is unset unless an entry sets it.
#   start_servers BIN MODEL_DIR PORT "label=settings;..."   (server i: gRPC on PORT+i,
#                                                           metrics on PORT+1000+i)
#   labels[i], pids[i]   what start_servers started
#   wait_servers LOADGEN IMAGES PORT    waits until each answers

start_servers() {
  local bin=$1 models=$2 port=$3 list=$4 entry settings w i
  IFS=';' read -ra entries <<<"$list"
  labels=() pids=()
  for i in "${!entries[@]}"; do
    entry=${entries[$i]}
    labels+=("${entry%%=*}")
    settings=${entry#*=}
    local envs=() args=()
    read -ra words <<<"$settings"
    for w in "${words[@]}"; do
      if [ ${#args[@]} -eq 0 ] && [[ $w =~ ^[A-Z_]+= ]]; then envs+=("$w"); else args+=("$w"); fi
    done
    env GOGC= "${envs[@]}" "$bin" --listen "127.0.0.1:$((port + i))" --metrics-listen "127.0.0.1:$((port + 1000 + i))" \
      --model-dir "$models" --log-level warn --precision fp32 "${args[@]}" &
    pids+=($!)
  done
}

# wait_servers LOADGEN IMAGES PORT: waits until every started server answers a
# Classify of IMAGES (up to a minute each).
wait_servers() {
  local loadgen=$1 images=$2 port=$3 i
  for i in "${!labels[@]}"; do
    for _ in $(seq 1 300); do
      "$loadgen" -addr "127.0.0.1:$((port + i))" -images "$images" -concurrency 1 -duration 1ms -warmup 0s >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
}
