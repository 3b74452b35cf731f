#!/usr/bin/env bash
# Layering check (docs: ARCHITECTURE.md section 2).
#
#   kernel <- iam <- other domain crates <- adapters <- app
#
# Fails (exit 1, naming the crate and the forbidden dependency) when
#   (a) a domain crate has an I/O or framework crate anywhere in its normal dependency tree, or
#   (b) a workspace package other than whatpro-app depends directly (non-dev) on actix-web.
#
# Needs only cargo and python3. Run from anywhere; it works on the workspace it lives in.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO=${CARGO:-cargo}

DOMAIN_CRATES=(
  whatpro-kernel whatpro-iam whatpro-tenancy whatpro-entitlements
  whatpro-kanban whatpro-chat whatpro-inbox whatpro-billing
)
FORBIDDEN_IN_DOMAIN=(
  diesel diesel-async reqwest actix-web actix-http actix-ws redis pasetors argon2 tokio-postgres
)
ACTIX_WEB_OWNER=whatpro-app

metadata=$("$CARGO" metadata --no-deps --format-version 1)

# Workspace package names, one per line.
workspace_packages=$(python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
for pkg in meta["packages"]:
    if pkg["id"] in members:
        print(pkg["name"])
' <<<"$metadata")

violations=0
checked_domain=()

# (a) domain crates: nothing forbidden anywhere in the normal dependency tree.
for pkg in "${DOMAIN_CRATES[@]}"; do
  grep -qxF "$pkg" <<<"$workspace_packages" || continue
  checked_domain+=("$pkg")
  tree=$("$CARGO" tree -e normal --target all -p "$pkg" --prefix none --format '{p}' \
    | awk '{print $1}' | sort -u)
  for bad in "${FORBIDDEN_IN_DOMAIN[@]}"; do
    if grep -qxF "$bad" <<<"$tree"; then
      echo "check-layers: FORBIDDEN: domain crate $pkg depends on $bad" \
        "(see: cargo tree -e normal -p $pkg -i $bad)" >&2
      violations=$((violations + 1))
    fi
  done
done

# (b) only whatpro-app may have actix-web as a direct normal dependency.
direct_actix=$(python3 -c '
import json, sys
owner = sys.argv[1]
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
for pkg in meta["packages"]:
    if pkg["id"] not in members or pkg["name"] == owner:
        continue
    for dep in pkg["dependencies"]:
        if dep["name"] == "actix-web" and dep["kind"] is None:
            print(pkg["name"])
            break
' "$ACTIX_WEB_OWNER" <<<"$metadata")

while IFS= read -r pkg; do
  [[ -n "$pkg" ]] || continue
  echo "check-layers: FORBIDDEN: $pkg depends directly on actix-web" \
    "(only $ACTIX_WEB_OWNER may; dev-dependencies are fine)" >&2
  violations=$((violations + 1))
done <<<"$direct_actix"

if ((violations > 0)); then
  echo "check-layers: $violations forbidden edge(s) found" >&2
  exit 1
fi

total=$(grep -c . <<<"$workspace_packages")
echo "check-layers: OK — domain crates checked: ${checked_domain[*]:-none};" \
  "no package but $ACTIX_WEB_OWNER depends directly on actix-web ($total workspace packages)"
