# WhatPro Hub tasks. Every recipe is a plain cargo/script call, so nothing here is required:
# the README's two commands work without `just`.

# Run the Hub on embedded defaults (local PostgreSQL under .data/, Chatwoot simulator).
dev:
    cargo run -- dev

# The whole test suite (what CI runs).
test:
    cargo test --workspace

# Everything CI checks.
ci:
    .ci/run

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Fails when a domain crate depends on infrastructure or anything but `app` on actix-web.
check-layers:
    scripts/check-layers.sh

# Licences, bans (the layering again) and sources; advisories need network access.
deny:
    cargo deny check bans licenses sources

# Apply migrations to DATABASE_URL.
migrate:
    cargo run -- migrate

# Regenerate the committed OpenAPI document.
openapi:
    cargo run -q -- openapi > docs/openapi.json

# Create a new migration directory: just new-migration add_boards
new-migration name:
    mkdir -p "migrations/$(date -u +%Y-%m-%d-%H%M%S)_{{name}}" && touch "migrations/$(date -u +%Y-%m-%d-%H%M%S)_{{name}}/up.sql" "migrations/$(date -u +%Y-%m-%d-%H%M%S)_{{name}}/down.sql"

# Release build + load test; results in target/bench/.
bench *args:
    cargo build --release -p whatpro-app -p whatpro-bench
    target/release/whatpro-bench {{args}}
