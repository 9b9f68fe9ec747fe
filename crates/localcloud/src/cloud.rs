//! The emulated cloud as one shareable value: state, clock, audit trail, fault plan.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{AwsError, AwsResult};
use crate::faults::Faults;
use crate::policy::Caller;
use crate::protocol::Service;
use crate::state::{Account, Change, KeyState, PersistError, Persistent, ids};
use crate::trail::Trail;

/// The clock every deadline is measured on: the wall clock plus a settable offset, so that
/// tests can make a session expire or a deletion window pass without waiting.
///
/// SigV4's five-minute skew check deliberately uses the *wall* clock: clients sign with theirs.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        // Offsets are bounded where they are set and loaded; checked all the same, since a
        // panic here would take down every request.
        now.checked_add(time::Duration::seconds(self.offset())).unwrap_or(now)
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    fn set_offset(&self, seconds: i64) {
        self.offset.store(seconds, Ordering::Relaxed);
    }
}

/// Who is calling, from where, as established by SigV4 verification.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: Service,
    pub region: String,
    pub caller: Caller,
    pub access_key_id: String,
    pub request_id: String,
    /// The caller's identity-based policies, as they stand when the request arrives.
    pub identity: crate::policy::Identity,
}

/// The whole emulator. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Cloud {
    state: RwLock<Persistent>,
    pub clock: Clock,
    pub trail: Trail,
    pub faults: Faults,
    /// When set, every `/_localcloud` request must carry `Authorization: Bearer TOKEN`.
    admin_token: RwLock<Option<zeroize::Zeroizing<String>>>,
}

/// The credentials of a new account, as handed to its owner.
pub struct AccountCredentials {
    pub account_id: String,
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Cloud {
    /// A cloud whose state is kept in `data_dir` (or only in memory when `None`).
    pub fn open(data_dir: Option<&Path>) -> Result<Self, PersistError> {
        Self::open_with(data_dir, crate::trail::TrailLimits::default())
    }

    /// The same, with the trail kept within `trail_limits`.
    pub fn open_with(data_dir: Option<&Path>, trail_limits: crate::trail::TrailLimits) -> Result<Self, PersistError> {
        let (persistent, trail) = match data_dir {
            Some(dir) => (Persistent::open(dir)?, Trail::open_with(Some(dir), trail_limits)?),
            None => (Persistent::in_memory(), Trail::open_with(None, trail_limits)?),
        };
        let clock = Clock::default();
        clock.set_offset(persistent.state.clock_offset);
        let cloud = Self { state: RwLock::new(persistent), clock, trail, faults: Faults::default(), admin_token: RwLock::new(None) };
        cloud.sweep_deleted_keys();
        Ok(cloud)
    }

    /// Requires `token` on every admin request from now on (`None`: loopback alone suffices).
    pub fn set_admin_token(&self, token: Option<zeroize::Zeroizing<String>>) {
        *self.admin_token.write() = token;
    }

    /// Whether `presented` is the admin token (constant time), or none is required.
    pub fn admin_token_ok(&self, presented: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        match &*self.admin_token.read() {
            None => true,
            Some(expected) => presented.is_some_and(|p| p.len() == expected.len() && bool::from(p.as_bytes().ct_eq(expected.as_bytes()))),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Persistent> {
        self.state.read()
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Persistent> {
        self.state.write()
    }

    /// Journals a change, turning a disk failure into the service's internal error.
    pub fn commit(&self, guard: &mut Persistent, service: Service, change: Change) -> AwsResult<()> {
        guard.commit(change).map_err(|e| {
            tracing::error!(error = %e, "could not persist a change");
            AwsError::internal(service, 500)
        })
    }

    /// Creates an account with root credentials. `id` is generated unless given.
    pub fn create_account(&self, name: &str, id: Option<&str>) -> Result<AccountCredentials, AdminError> {
        if name.is_empty() || name.len() > 50 {
            return Err(AdminError::Invalid("an account name is 1 to 50 characters".into()));
        }
        let mut guard = self.write();
        let id = match id {
            Some(id) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => id.to_string(),
            Some(id) => return Err(AdminError::Invalid(format!("'{id}' is not a 12-digit account id"))),
            None => loop {
                let candidate = ids::account_id();
                if !guard.state.accounts.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        if guard.state.accounts.contains_key(&id) {
            return Err(AdminError::Conflict(format!("account {id} already exists")));
        }
        let account = Account {
            id: id.clone(),
            name: name.to_string(),
            access_key_id: ids::upper("AKIA", 16),
            secret_access_key: Zeroizing::new(ids::secret_key()),
            created: self.clock.now().unix_timestamp(),
        };
        let creds = AccountCredentials {
            account_id: id,
            name: name.to_string(),
            access_key_id: account.access_key_id.clone(),
            secret_access_key: account.secret_access_key.clone(),
        };
        guard.commit(Change::AccountCreated(account)).map_err(AdminError::Persist)?;
        Ok(creds)
    }

    /// The furthest the clock may be moved either way: ten years.
    pub const MAX_CLOCK_OFFSET: i64 = crate::state::MAX_CLOCK_OFFSET;

    /// Moves the clock and persists the new offset, then destroys keys whose window passed.
    /// An offset beyond ±10 years is refused before anything is saved (a saved absurd offset
    /// would make every later start fail).
    pub fn set_clock_offset(&self, seconds: i64) -> Result<(), AdminError> {
        if !(-Self::MAX_CLOCK_OFFSET..=Self::MAX_CLOCK_OFFSET).contains(&seconds) {
            return Err(AdminError::Invalid(format!(
                "the clock offset is at most ±{} seconds (ten years), not {seconds}",
                Self::MAX_CLOCK_OFFSET
            )));
        }
        {
            let mut guard = self.write();
            guard.commit(Change::ClockOffsetSet { seconds }).map_err(AdminError::Persist)?;
            self.clock.set_offset(seconds);
        }
        self.sweep_deleted_keys();
        Ok(())
    }

    /// Destroys every key whose deletion date has passed (and, with them, their aliases).
    /// Lookups already treat such keys as gone; this makes it durable.
    pub fn sweep_deleted_keys(&self) {
        let now = self.clock.now().unix_timestamp();
        let due: Vec<_> = self
            .read()
            .state
            .keys
            .iter()
            .filter(|(_, k)| k.state == KeyState::PendingDeletion && k.deletion_date.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let mut guard = self.write();
        for id in due {
            if let Err(e) = guard.commit(Change::KeyDeleted { id }) {
                tracing::error!(error = %e, "could not persist a key deletion");
            }
        }
    }
}

/// Failures of the `/_localcloud` admin surface.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Persist(#[from] PersistError),
}
