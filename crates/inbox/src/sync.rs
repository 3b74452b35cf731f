//! Planning an inbox sync, as a pure function: the mirror as stored plus Chatwoot's list give
//! the rows to insert, refresh and mark removed, the over-quota flags and the run's counts.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use whatpro_kernel::IdGen;

use crate::ids::{ChatwootInboxId, InboxId};
use crate::model::{ChatwootInbox, Inbox, NewMirrorRow, SyncCounts, SyncPlan};

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Plans a sync of `mirror` (every stored inbox of the account, removed ones included) to
/// Chatwoot's `listed` inboxes, at `now`, under the plan's inbox `limit` (`None`: unlimited).
///
/// - Inboxes are matched by Chatwoot id; a repeated id in `listed` counts once (first wins).
/// - Known inboxes are refreshed (`updated` when name or channel type changed, `restored`
///   when they had been removed, else `unchanged`); unknown ones are inserted with ids from
///   `ids`; stored inboxes that Chatwoot no longer lists are marked removed (kept for history).
/// - Over quota: the inboxes in service after the sync, ordered by when the Hub first saw them
///   (then by Chatwoot id), keep service up to `limit`; the rest are flagged.
pub fn plan_sync(
    mirror: &[Inbox],
    listed: &[ChatwootInbox],
    limit: Option<i64>,
    now: OffsetDateTime,
    ids: &dyn IdGen,
) -> SyncPlan {
    let by_chatwoot: HashMap<ChatwootInboxId, &Inbox> =
        mirror.iter().map(|i| (i.chatwoot_inbox_id, i)).collect();
    let mut plan = SyncPlan::default();
    let mut seen_ids: HashSet<ChatwootInboxId> = HashSet::new();
    // (first seen, chatwoot id, hub id) of every inbox in service after the sync.
    let mut in_service: Vec<(OffsetDateTime, ChatwootInboxId, InboxId)> = Vec::new();

    for inbox in listed {
        if !seen_ids.insert(inbox.id) {
            continue;
        }
        match by_chatwoot.get(&inbox.id) {
            Some(known) => {
                if known.removed {
                    plan.counts.restored += 1;
                } else if known.name != inbox.name || known.channel_type != inbox.channel_type {
                    plan.counts.updated += 1;
                } else {
                    plan.counts.unchanged += 1;
                }
                plan.seen.push((known.id, inbox.clone()));
                in_service.push((known.first_seen_at, inbox.id, known.id));
            }
            None => {
                let id = InboxId::from_uuid(ids.new_id());
                plan.counts.added += 1;
                plan.inserts.push(NewMirrorRow {
                    id,
                    inbox: inbox.clone(),
                });
                in_service.push((now, inbox.id, id));
            }
        }
    }
    plan.removed = mirror
        .iter()
        .filter(|i| !i.removed && !seen_ids.contains(&i.chatwoot_inbox_id))
        .map(|i| i.id)
        .collect();

    in_service.sort_by_key(|(first_seen, chatwoot_id, _)| (*first_seen, *chatwoot_id));
    let keep = limit.map_or(usize::MAX, |l| {
        usize::try_from(l.max(0)).unwrap_or(usize::MAX)
    });
    plan.over_quota = in_service.iter().skip(keep).map(|(_, _, id)| *id).collect();

    plan.counts = SyncCounts {
        fetched: count(listed.len()),
        removed: count(plan.removed.len()),
        over_quota: count(plan.over_quota.len()),
        ..plan.counts
    };
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;
    use whatpro_kernel::UuidV7Gen;

    const T0: OffsetDateTime = datetime!(2026-11-01 10:00:00 UTC);
    const NOW: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

    fn listed(id: i64, name: &str) -> ChatwootInbox {
        ChatwootInbox {
            id: ChatwootInboxId::new(id),
            name: name.to_owned(),
            channel_type: "Channel::Api".to_owned(),
        }
    }

    fn stored(id: i64, name: &str, first_seen: OffsetDateTime, removed: bool) -> Inbox {
        Inbox {
            id: InboxId::from_uuid(Uuid::now_v7()),
            chatwoot_inbox_id: ChatwootInboxId::new(id),
            name: name.to_owned(),
            channel_type: "Channel::Api".to_owned(),
            provider_instance_id: None,
            over_quota: false,
            removed,
            first_seen_at: first_seen,
            last_synced_at: first_seen,
        }
    }

    #[test]
    fn first_sync_inserts_everything_and_repeats_change_nothing() {
        let chatwoot = [listed(1, "Suporte"), listed(2, "Vendas"), listed(2, "dup")];
        let plan = plan_sync(&[], &chatwoot, None, NOW, &UuidV7Gen);
        assert_eq!(plan.inserts.len(), 2);
        assert_eq!(plan.counts.added, 2);
        assert_eq!(plan.counts.fetched, 3);
        assert!(plan.removed.is_empty() && plan.over_quota.is_empty());

        let mirror: Vec<Inbox> = plan
            .inserts
            .iter()
            .map(|row| Inbox {
                id: row.id,
                ..stored(row.inbox.id.get(), &row.inbox.name, NOW, false)
            })
            .collect();
        let again = plan_sync(&mirror, &chatwoot, None, NOW, &UuidV7Gen);
        assert!(again.inserts.is_empty());
        assert_eq!(again.counts.unchanged, 2);
        assert_eq!(
            again.counts.added + again.counts.updated + again.counts.removed,
            0
        );
        assert_eq!(again.seen.len(), 2);
    }

    #[test]
    fn renames_removals_and_returns_are_counted() {
        let mirror = [
            stored(1, "Suporte", T0, false),
            stored(2, "Vendas", T0, false),
            stored(3, "Antigo", T0, true),
            stored(4, "Sumiu", T0, false),
        ];
        let chatwoot = [
            listed(1, "Suporte"),
            listed(2, "Vendas BR"),
            listed(3, "Antigo"),
        ];
        let plan = plan_sync(&mirror, &chatwoot, None, NOW, &UuidV7Gen);
        assert_eq!(plan.counts.unchanged, 1);
        assert_eq!(plan.counts.updated, 1);
        assert_eq!(plan.counts.restored, 1);
        assert_eq!(plan.counts.removed, 1);
        assert_eq!(plan.removed, vec![mirror[3].id]);
        // Already removed inboxes are not removed again.
        let plan = plan_sync(&mirror, &[], None, NOW, &UuidV7Gen);
        assert_eq!(plan.removed.len(), 3);
    }

    #[test]
    fn the_oldest_inboxes_keep_service_over_quota() {
        let old_b = stored(20, "B", T0, false);
        let old_a = stored(30, "A", T0 - time::Duration::days(1), false);
        let gone = stored(5, "gone", T0 - time::Duration::days(9), false);
        let mirror = [old_b.clone(), old_a.clone(), gone];
        // Chatwoot lists a new inbox with a low id first; it must not displace older ones.
        let chatwoot = [
            listed(1, "new"),
            listed(20, "B"),
            listed(30, "A"),
            listed(10, "new2"),
        ];
        let plan = plan_sync(&mirror, &chatwoot, Some(2), NOW, &UuidV7Gen);
        let new_ids: Vec<InboxId> = plan.inserts.iter().map(|r| r.id).collect();
        assert_eq!(plan.counts.over_quota, 2);
        assert!(!plan.over_quota.contains(&old_a.id));
        assert!(!plan.over_quota.contains(&old_b.id));
        for id in &new_ids {
            assert!(plan.over_quota.contains(id));
        }
        // Same first-seen time: the lower Chatwoot id keeps service.
        let plan = plan_sync(&mirror, &chatwoot, Some(3), NOW, &UuidV7Gen);
        let new_one = plan.inserts.iter().find(|r| r.inbox.id.get() == 1).unwrap();
        let new_ten = plan
            .inserts
            .iter()
            .find(|r| r.inbox.id.get() == 10)
            .unwrap();
        assert_eq!(plan.over_quota, vec![new_ten.id]);
        assert!(!plan.over_quota.contains(&new_one.id));
        // Removed inboxes never count against the limit; a zero limit flags everything.
        let plan = plan_sync(&mirror, &chatwoot, Some(0), NOW, &UuidV7Gen);
        assert_eq!(plan.over_quota.len(), 4);
    }
}
