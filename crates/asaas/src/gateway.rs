//! [`AsaasClient`] as the billing domain's [`PaymentGateway`]: customers found by our external
//! reference before one is created (Asaas does not de-duplicate them), monthly subscriptions,
//! re-reads of payments and subscriptions.

use async_trait::async_trait;
use whatpro_billing::{
    CustomerInfo, GatewayError, GatewayPayment, GatewaySubscription, NewSubscription,
    PaymentGateway, PaymentState, SubscriptionState,
};
use whatpro_kernel::AccountId;

use crate::client::AsaasClient;
use crate::error::AsaasError;
use crate::types::{self, Cycle, Payment, Subscription, SubscriptionStatus, SubscriptionUpdate};

/// The external reference of an account's customer at Asaas.
pub fn customer_reference(account: AccountId) -> String {
    format!("whatpro-account-{account}")
}

impl From<AsaasError> for GatewayError {
    fn from(error: AsaasError) -> Self {
        match error {
            AsaasError::Rejected { errors, .. } => GatewayError::Rejected(
                errors
                    .iter()
                    .map(|e| format!("{} ({})", e.description, e.code))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            AsaasError::Unauthorized => GatewayError::Unauthorized,
            AsaasError::Unavailable(m) => GatewayError::Unavailable(m),
            other => GatewayError::Upstream(other.to_string()),
        }
    }
}

fn billing_type(t: whatpro_billing::BillingType) -> types::BillingType {
    match t {
        whatpro_billing::BillingType::Undefined => types::BillingType::Undefined,
        whatpro_billing::BillingType::Boleto => types::BillingType::Boleto,
        whatpro_billing::BillingType::CreditCard => types::BillingType::CreditCard,
        whatpro_billing::BillingType::Pix => types::BillingType::Pix,
    }
}

fn subscription(s: Subscription) -> GatewaySubscription {
    GatewaySubscription {
        state: match s.status {
            SubscriptionStatus::Active => SubscriptionState::Active,
            SubscriptionStatus::Inactive => SubscriptionState::Inactive,
            SubscriptionStatus::Expired => SubscriptionState::Expired,
            SubscriptionStatus::Other(o) => SubscriptionState::Other(o),
        },
        id: s.id,
        deleted: s.deleted,
        next_due_date: s.next_due_date,
        value_cents: s.value_cents,
    }
}

fn payment(p: Payment) -> GatewayPayment {
    GatewayPayment {
        state: PaymentState::parse(p.status.as_str()),
        id: p.id,
        subscription_id: p.subscription,
        value_cents: p.value_cents,
        due_date: Some(p.due_date),
        payment_date: p.payment_date.or(p.confirmed_date),
        deleted: p.deleted,
        invoice_url: p.invoice_url,
    }
}

/// `NotFound` as "the gateway does not know it".
fn known<T>(result: Result<T, AsaasError>) -> Result<Option<T>, GatewayError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AsaasError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl PaymentGateway for AsaasClient {
    async fn ensure_customer(
        &self,
        account: AccountId,
        customer: &CustomerInfo,
    ) -> Result<String, GatewayError> {
        let reference = customer_reference(account);
        if let Some(found) = self.find_customer_by_external_reference(&reference).await?
            && !found.deleted
        {
            return Ok(found.id);
        }
        let created = self
            .create_customer(&types::NewCustomer {
                name: customer.name.clone(),
                cpf_cnpj: customer.cpf_cnpj.digits().to_owned(),
                email: Some(customer.email.clone()),
                external_reference: Some(reference),
                notification_disabled: false,
            })
            .await?;
        Ok(created.id)
    }

    async fn create_subscription(
        &self,
        request: &NewSubscription,
    ) -> Result<GatewaySubscription, GatewayError> {
        let created = AsaasClient::create_subscription(
            self,
            &types::NewSubscription {
                customer: request.customer_id.clone(),
                billing_type: billing_type(request.billing_type),
                value_cents: request.value_cents,
                next_due_date: request.next_due_date,
                cycle: Cycle::Monthly,
                description: Some(request.description.clone()),
                external_reference: Some(request.external_reference.clone()),
            },
        )
        .await?;
        Ok(subscription(created))
    }

    async fn change_subscription_value(
        &self,
        subscription_id: &str,
        value_cents: i64,
        apply_to_pending: bool,
    ) -> Result<GatewaySubscription, GatewayError> {
        let updated = self
            .update_subscription(
                subscription_id,
                &SubscriptionUpdate {
                    value_cents: Some(value_cents),
                    update_pending_payments: Some(apply_to_pending),
                    ..SubscriptionUpdate::default()
                },
            )
            .await?;
        Ok(subscription(updated))
    }

    async fn cancel_subscription(&self, subscription_id: &str) -> Result<(), GatewayError> {
        match self.delete_subscription(subscription_id).await {
            // Already gone is what we wanted.
            Ok(_) | Err(AsaasError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<GatewaySubscription>, GatewayError> {
        Ok(known(self.get_subscription(subscription_id).await)?.map(subscription))
    }

    async fn payment(&self, payment_id: &str) -> Result<Option<GatewayPayment>, GatewayError> {
        Ok(known(self.get_payment(payment_id).await)?.map(payment))
    }
}
