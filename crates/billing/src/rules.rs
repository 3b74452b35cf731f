//! The status machine, as pure functions of the record and what the gateway says.
//!
//! `trialing -> pending` (subscribed) `-> active` (a payment confirmed or received)
//! `-> past_due` (a payment overdue) `-> restricted` (grace period over) `-> active` (paid);
//! any live status `-> canceled` when the subscription ends at the gateway.

use time::{Date, Duration, OffsetDateTime};

use crate::model::{
    BillingAccount, BillingStatus, GatewayPayment, GatewaySubscription, StatusChange,
};

fn change(record: &mut BillingAccount, to: BillingStatus, reason: String) -> Option<StatusChange> {
    if record.status == to {
        return None;
    }
    let from = record.status;
    record.status = to;
    Some(StatusChange { from, to, reason })
}

fn grace_over(record: &BillingAccount, now: OffsetDateTime, grace_days: u32) -> bool {
    record
        .past_due_since
        .is_some_and(|since| since + Duration::days(i64::from(grace_days)) <= now)
}

/// Applies a payment (freshly read from the gateway) to the record. A paid payment restores
/// `active`; an overdue one starts the grace period unless a payment with the same or a later
/// due date was already paid (a late, stale notice never locks the account).
pub fn apply_payment(
    record: &mut BillingAccount,
    payment: &GatewayPayment,
    now: OffsetDateTime,
    grace_days: u32,
) -> Vec<StatusChange> {
    let mut changes = Vec::new();
    if record.status == BillingStatus::Canceled || record.status == BillingStatus::Trialing {
        return changes;
    }
    if payment.state.is_paid() {
        if let Some(due) = payment.due_date {
            record.last_paid_due_date = Some(record.last_paid_due_date.map_or(due, |d| d.max(due)));
        }
        if matches!(
            record.status,
            BillingStatus::Pending | BillingStatus::PastDue | BillingStatus::Restricted
        ) {
            record.past_due_since = None;
            changes.extend(change(
                record,
                BillingStatus::Active,
                format!("payment {} {}", payment.id, payment.state.as_str()),
            ));
        }
    } else if payment.state == crate::model::PaymentState::Overdue && !payment.deleted {
        let stale = match (record.last_paid_due_date, payment.due_date) {
            (Some(paid), Some(due)) => paid >= due,
            _ => false,
        };
        if !stale
            && matches!(
                record.status,
                BillingStatus::Active | BillingStatus::Pending
            )
        {
            record.past_due_since = Some(now);
            changes.extend(change(
                record,
                BillingStatus::PastDue,
                format!("payment {} OVERDUE", payment.id),
            ));
        }
        if record.status == BillingStatus::PastDue && grace_over(record, now, grace_days) {
            changes.extend(change(
                record,
                BillingStatus::Restricted,
                format!("grace period of {grace_days} days over"),
            ));
        }
    }
    changes
}

/// Applies a subscription (freshly read; `None` when the gateway no longer knows it).
pub fn apply_subscription(
    record: &mut BillingAccount,
    subscription: Option<&GatewaySubscription>,
) -> Vec<StatusChange> {
    if !record.status.has_live_subscription() {
        return Vec::new();
    }
    match subscription {
        Some(sub) if !sub.ended() => {
            if sub.next_due_date.is_some() {
                record.next_due_date = sub.next_due_date;
            }
            Vec::new()
        }
        ended => {
            let why = match ended {
                Some(sub) if sub.deleted => "deleted",
                Some(_) => "inactive",
                None => "unknown to the gateway",
            };
            record.cancel_at_period_end = false;
            record.pending_plan_id = None;
            record.past_due_since = None;
            change(
                record,
                BillingStatus::Canceled,
                format!("subscription {why}"),
            )
            .into_iter()
            .collect()
        }
    }
}

/// What a time-driven sweep of one record decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sweep {
    /// Status changes made on the record.
    pub changes: Vec<StatusChange>,
    /// The pending plan became current: apply it to entitlements.
    pub plan_changed: bool,
    /// The period of a cancelled subscription is over: end it at the gateway (then mark the
    /// record canceled).
    pub end_subscription: bool,
}

/// Time-driven transitions: the grace period ending, a downgrade at the end of the period,
/// a cancellation at the end of the period.
pub fn sweep(record: &mut BillingAccount, now: OffsetDateTime, grace_days: u32) -> Sweep {
    let mut out = Sweep::default();
    let today: Date = now.date();
    if record.status == BillingStatus::PastDue && grace_over(record, now, grace_days) {
        out.changes.extend(change(
            record,
            BillingStatus::Restricted,
            format!("grace period of {grace_days} days over"),
        ));
    }
    let period_over = record.next_due_date.is_some_and(|d| d <= today);
    if period_over && record.status.has_live_subscription() {
        if record.cancel_at_period_end {
            out.end_subscription = true;
        } else if let Some(plan) = record.pending_plan_id.take() {
            record.plan_id = Some(plan);
            out.plan_changed = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};
    use whatpro_kernel::AccountId;

    use super::*;
    use crate::model::{PaymentState, SubscriptionState};

    fn record(status: BillingStatus) -> BillingAccount {
        let mut r = BillingAccount::trialing(AccountId::new(1));
        r.status = status;
        r.subscription_id = Some("sub_1".to_owned());
        r
    }

    fn payment(id: &str, state: PaymentState, due: Date) -> GatewayPayment {
        GatewayPayment {
            id: id.to_owned(),
            subscription_id: Some("sub_1".to_owned()),
            state,
            value_cents: 9900,
            due_date: Some(due),
            payment_date: None,
            deleted: false,
            invoice_url: None,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    #[test]
    fn the_first_paid_payment_activates_a_pending_account() {
        let mut r = record(BillingStatus::Pending);
        let changes = apply_payment(
            &mut r,
            &payment("p1", PaymentState::Confirmed, date!(2026 - 11 - 30)),
            NOW,
            7,
        );
        assert_eq!(r.status, BillingStatus::Active);
        assert_eq!(changes.len(), 1);
        assert_eq!(r.last_paid_due_date, Some(date!(2026 - 11 - 30)));
    }

    #[test]
    fn overdue_starts_the_grace_period_and_payment_restores_active() {
        let mut r = record(BillingStatus::Active);
        apply_payment(
            &mut r,
            &payment("p2", PaymentState::Overdue, date!(2026 - 11 - 20)),
            NOW,
            7,
        );
        assert_eq!(
            (r.status, r.past_due_since),
            (BillingStatus::PastDue, Some(NOW))
        );
        // A sweep inside the grace period changes nothing; after it, restricted.
        assert!(sweep(&mut r, NOW + Duration::days(6), 7).changes.is_empty());
        let s = sweep(&mut r, NOW + Duration::days(7), 7);
        assert_eq!(r.status, BillingStatus::Restricted);
        assert_eq!(s.changes[0].to, BillingStatus::Restricted);
        apply_payment(
            &mut r,
            &payment("p2", PaymentState::Received, date!(2026 - 11 - 20)),
            NOW,
            7,
        );
        assert_eq!((r.status, r.past_due_since), (BillingStatus::Active, None));
    }

    #[test]
    fn a_zero_day_grace_restricts_at_once() {
        let mut r = record(BillingStatus::Active);
        let changes = apply_payment(
            &mut r,
            &payment("p2", PaymentState::Overdue, date!(2026 - 11 - 20)),
            NOW,
            0,
        );
        assert_eq!(r.status, BillingStatus::Restricted);
        assert_eq!(
            changes.iter().map(|c| c.to).collect::<Vec<_>>(),
            [BillingStatus::PastDue, BillingStatus::Restricted]
        );
    }

    #[test]
    fn a_late_overdue_notice_for_an_older_due_date_changes_nothing() {
        let mut r = record(BillingStatus::Active);
        apply_payment(
            &mut r,
            &payment("new", PaymentState::Received, date!(2026 - 12 - 30)),
            NOW,
            7,
        );
        let changes = apply_payment(
            &mut r,
            &payment("old", PaymentState::Overdue, date!(2026 - 11 - 30)),
            NOW,
            7,
        );
        assert!(changes.is_empty());
        assert_eq!(r.status, BillingStatus::Active);
    }

    #[test]
    fn refunds_and_unknown_states_are_only_recorded() {
        let mut r = record(BillingStatus::Active);
        for state in [
            PaymentState::Refunded,
            PaymentState::Other("CHARGEBACK_REQUESTED".to_owned()),
            PaymentState::Pending,
        ] {
            assert!(
                apply_payment(&mut r, &payment("p", state, date!(2026 - 11 - 30)), NOW, 7)
                    .is_empty()
            );
        }
        assert_eq!(r.status, BillingStatus::Active);
    }

    #[test]
    fn canceled_and_trialing_accounts_ignore_payments() {
        for status in [BillingStatus::Canceled, BillingStatus::Trialing] {
            let mut r = record(status);
            apply_payment(
                &mut r,
                &payment("p", PaymentState::Received, date!(2026 - 11 - 30)),
                NOW,
                7,
            );
            assert_eq!(r.status, status);
        }
    }

    #[test]
    fn an_ended_or_unknown_subscription_cancels_and_a_live_one_updates_the_due_date() {
        let live = GatewaySubscription {
            id: "sub_1".to_owned(),
            state: SubscriptionState::Active,
            deleted: false,
            next_due_date: Some(date!(2026 - 12 - 30)),
            value_cents: 9900,
        };
        let mut r = record(BillingStatus::Active);
        assert!(apply_subscription(&mut r, Some(&live)).is_empty());
        assert_eq!(r.next_due_date, Some(date!(2026 - 12 - 30)));
        let deleted = GatewaySubscription {
            deleted: true,
            ..live.clone()
        };
        let changes = apply_subscription(&mut r, Some(&deleted));
        assert_eq!((r.status, changes.len()), (BillingStatus::Canceled, 1));
        let mut r = record(BillingStatus::PastDue);
        apply_subscription(&mut r, None);
        assert_eq!(r.status, BillingStatus::Canceled);
        let inactive = GatewaySubscription {
            state: SubscriptionState::Inactive,
            ..live
        };
        let mut r = record(BillingStatus::Active);
        apply_subscription(&mut r, Some(&inactive));
        assert_eq!(r.status, BillingStatus::Canceled);
    }

    #[test]
    fn downgrades_and_cancellations_wait_for_the_end_of_the_period() {
        let mut r = record(BillingStatus::Active);
        r.plan_id = Some("pro".parse().unwrap_or_else(|_| unreachable!()));
        r.pending_plan_id = Some("starter".parse().unwrap_or_else(|_| unreachable!()));
        r.next_due_date = Some(date!(2026 - 12 - 01));
        assert_eq!(sweep(&mut r, NOW, 7), Sweep::default(), "period not over");
        let s = sweep(&mut r, datetime!(2026-12-01 00:00 UTC), 7);
        assert!(s.plan_changed);
        assert_eq!(r.plan_id.as_ref().map(|p| p.as_str()), Some("starter"));
        r.cancel_at_period_end = true;
        assert!(sweep(&mut r, datetime!(2026-12-02 00:00 UTC), 7).end_subscription);
    }
}
