#!/usr/bin/env bash
# Lists the server's services, then the methods of each Atelier service, through
# server reflection: no .proto files needed.
#   examples/grpcurl/list.sh            (server: $ATELIER_ADDR or localhost:8500)
set -euo pipefail
addr=${ATELIER_ADDR:-localhost:8500}
grpcurl=${GRPCURL:-grpcurl}
"$grpcurl" -plaintext "$addr" list
for svc in $("$grpcurl" -plaintext "$addr" list | grep '^atelier\.'); do
  "$grpcurl" -plaintext "$addr" list "$svc"
done
