//! What each sealed secret is bound to, and how credentials are sealed (a JSON object of
//! key/value pairs) and opened.

use std::collections::BTreeMap;

use whatpro_kernel::AccountId;

use crate::error::InboxError;
use crate::ids::{InstanceId, ProviderId};
use crate::model::SealedCredentials;
use crate::ports::{SealError, SecretSealer};
use crate::provider::Credentials;

/// The purpose of an account's sealed Chatwoot token.
pub fn chatwoot_token_purpose(account: AccountId) -> String {
    format!("whatpro:sealed:chatwoot-connection:{account}")
}

/// The purpose of a provider's sealed credentials.
pub fn provider_credentials_purpose(account: AccountId, provider: ProviderId) -> String {
    format!("whatpro:sealed:provider-credentials:{account}:{provider}")
}

/// The purpose of an instance's sealed credentials.
pub fn instance_credentials_purpose(account: AccountId, instance: InstanceId) -> String {
    format!("whatpro:sealed:instance-credentials:{account}:{instance}")
}

/// Seals `credentials` for `purpose`.
///
/// # Errors
/// `Internal` when sealing fails.
pub fn seal_credentials(
    sealer: &dyn SecretSealer,
    purpose: &str,
    credentials: &Credentials,
) -> Result<SealedCredentials, InboxError> {
    let json = serde_json::to_vec(credentials.pairs())
        .map_err(|e| InboxError::Internal(format!("cannot encode credentials: {e}")))?;
    let sealed = sealer
        .seal(purpose, &json)
        .map_err(|e| InboxError::Internal(format!("cannot seal credentials: {e}")))?;
    Ok(SealedCredentials {
        sealed,
        keys: credentials.keys().map(str::to_owned).collect(),
    })
}

/// Opens credentials sealed by [`seal_credentials`].
///
/// # Errors
/// [`SealError`] when they cannot be opened or are not a JSON object of strings.
pub fn open_credentials(
    sealer: &dyn SecretSealer,
    purpose: &str,
    sealed: &str,
) -> Result<Credentials, SealError> {
    let plain = sealer.open(purpose, sealed)?;
    let pairs: BTreeMap<String, String> = serde_json::from_slice(&plain)
        .map_err(|_| SealError("sealed credentials are not a JSON object".to_owned()))?;
    Ok(Credentials::new(pairs))
}
