//! PLACEHOLDER: replaced by the FileStore implementation.
use super::*;
use crate::token_set::StoredTokenSet;
use super::Versioned;
/// A store in one directory (in progress).
#[derive(Debug)]
pub struct FileStore;
#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, _key: &SessionKey) -> Result<Option<Versioned<StoredTokenSet>>, StoreError> { Ok(None) }
    async fn save(&self, _key: &SessionKey, _set: &StoredTokenSet, _expected: Option<Version>) -> Result<Version, StoreError> { Ok(0) }
    async fn delete(&self, _key: &SessionKey, _expected: Option<Version>) -> Result<bool, StoreError> { Ok(false) }
}
