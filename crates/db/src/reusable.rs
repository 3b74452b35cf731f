//! Raw SQL statements that each connection prepares once and then reuses.
//!
//! diesel never caches a `sql_query` as a prepared statement, because its text could be built
//! at run time and an unbounded number of texts would grow every connection's statement cache
//! without bound. PostgreSQL then parses, analyses and plans such a statement on every
//! execution; on the busiest write paths that was a visible share of the database's work per
//! request (profiled with `perf` under `whatpro-bench writes`). [`reusable`] marks a query whose
//! text is one of this crate's constants: the connection prepares it on first use and later
//! executions only bind and run it.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A `diesel::sql_query(CONSTANT)` with its binds that may live in the connection's prepared
/// statement cache (keyed by its text and bind types). Build it with [`reusable`].
#[derive(Debug, Clone, Copy)]
#[must_use = "queries run only when executed or loaded"]
pub(crate) struct Reusable<Q>(Q);

/// Lets the connection prepare `query` once and reuse it. Only for queries whose text is a
/// constant (`&'static str`) and whose binds have fixed types: every distinct text stays in
/// the cache for the connection's life.
pub(crate) fn reusable<Q>(query: Q) -> Reusable<Q> {
    Reusable(query)
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Reusable<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        // The text is a constant (see `reusable`), so caching it is bounded.
        Ok(true)
    }
}

impl<Q> QueryId for Reusable<Q> {
    // No static id: the cache is keyed by the statement's text and bind types.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Reusable<Q> {
    type SqlType = Q::SqlType;
}
