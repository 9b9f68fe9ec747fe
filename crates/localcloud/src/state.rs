//! The emulated cloud's state, and how it survives restarts.
//!
//! State lives in memory and changes only by applying a [`Change`]. Every change is appended to
//! a JSON-lines journal before it is applied, so a crash (even `kill -9`) loses nothing that was
//! acknowledged; at start-up the snapshot is loaded, the journal replayed, and a fresh snapshot
//! written. Appending keeps creating 20,000 keys linear, where rewriting a snapshot per change
//! would be quadratic.
//!
//! Role sessions are not state: their credentials are sealed into the session token itself
//! (see `session.rs`), as real STS does, so AssumeRole writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secret::Secret32;

/// One AWS account.
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub access_key_id: String,
    /// The root secret access key; never logged, redacted in `Debug`.
    pub secret_access_key: Zeroizing<String>,
    pub created: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// An IAM role.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub account: String,
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub created: i64,
    /// Inline identity policies by name (`PutRolePolicy`).
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Customer-managed policies attached (`AttachRolePolicy`), by ARN.
    #[serde(default)]
    pub attached_policies: std::collections::BTreeSet<String>,
}

/// A customer-managed IAM policy (`CreatePolicy`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub account: String,
    pub name: String,
    pub path: String,
    pub policy_id: String,
    pub document: String,
    pub created: i64,
}

impl ManagedPolicy {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:policy{}{}", self.account, self.path, self.name)
    }
}

impl Role {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role{}{}", self.account, self.path, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
        }
    }
}

/// A symmetric KMS key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    pub account: String,
    pub region: String,
    pub key_id: String,
    pub description: String,
    pub state: KeyState,
    pub policy: String,
    pub material: Secret32,
    pub created: i64,
    /// When a key pending deletion is destroyed.
    pub deletion_date: Option<i64>,
    pub pending_window_days: Option<i64>,
    /// The key policy, parsed once on first use (policies are validated when written).
    #[serde(skip)]
    pub parsed_policy: std::sync::OnceLock<std::sync::Arc<crate::policy::Policy>>,
}

impl Key {
    /// Whether the key is gone: its deletion window has passed at `now` (unix seconds).
    pub fn is_destroyed_at(&self, now: i64) -> bool {
        self.state == KeyState::PendingDeletion && self.deletion_date.is_some_and(|d| d <= now)
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:kms:{}:{}:key/{}", self.region, self.account, self.key_id)
    }
}

/// A KMS alias.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alias {
    pub account: String,
    pub region: String,
    pub name: String,
    pub target_key_id: String,
    pub created: i64,
    pub updated: i64,
}

impl Alias {
    pub fn arn(&self) -> String {
        format!("arn:aws:kms:{}:{}:{}", self.region, self.account, self.name)
    }
}

/// Where a key or alias lives: (account, region, id or name).
pub type RegionalId = (String, String, String);

/// Everything the emulator knows.
#[derive(Debug, Default)]
pub struct State {
    /// Seals role-session tokens; generated once per data directory.
    pub session_secret: Secret32,
    pub accounts: BTreeMap<String, Account>,
    /// Roles by (account, lower-cased name): IAM role names are case-insensitive.
    pub roles: BTreeMap<(String, String), Role>,
    pub keys: BTreeMap<RegionalId, Key>,
    pub aliases: BTreeMap<RegionalId, Alias>,
    /// Customer-managed policies by ARN.
    pub managed_policies: BTreeMap<String, ManagedPolicy>,
    /// Seconds added to the wall clock for everything with a deadline.
    pub clock_offset: i64,
    /// Access key id → account id, rebuilt on load.
    access_keys: HashMap<String, String>,
}

/// The furthest the clock may be moved either way: ten years.
pub const MAX_CLOCK_OFFSET: i64 = 10 * 366 * 86_400;

/// The snapshot file's shape: lists, since JSON maps cannot have tuple keys.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    session_secret: Secret32,
    accounts: Vec<Account>,
    roles: Vec<Role>,
    keys: Vec<Key>,
    aliases: Vec<Alias>,
    #[serde(default)]
    managed_policies: Vec<ManagedPolicy>,
    clock_offset: i64,
}

impl From<&State> for Snapshot {
    fn from(s: &State) -> Self {
        Self {
            session_secret: s.session_secret.clone(),
            accounts: s.accounts.values().cloned().collect(),
            roles: s.roles.values().cloned().collect(),
            keys: s.keys.values().cloned().collect(),
            aliases: s.aliases.values().cloned().collect(),
            managed_policies: s.managed_policies.values().cloned().collect(),
            clock_offset: s.clock_offset,
        }
    }
}

impl From<Snapshot> for State {
    fn from(s: Snapshot) -> Self {
        let mut state = State { session_secret: s.session_secret, ..State::default() };
        state.apply(Change::ClockOffsetSet { seconds: s.clock_offset });
        for account in s.accounts {
            state.apply(Change::AccountCreated(account));
        }
        for role in s.roles {
            state.apply(Change::RoleCreated(role));
        }
        for key in s.keys {
            state.apply(Change::KeyCreated(key));
        }
        for alias in s.aliases {
            state.apply(Change::AliasCreated(alias));
        }
        for policy in s.managed_policies {
            state.apply(Change::PolicyCreated(policy));
        }
        state
    }
}

/// One change to the state, as journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Change {
    AccountCreated(Account),
    RoleCreated(Role),
    RoleTrustPolicyUpdated {
        account: String,
        name: String,
        policy: String,
    },
    RoleDeleted {
        account: String,
        name: String,
    },
    KeyCreated(Key),
    KeyStateChanged {
        id: RegionalId,
        state: KeyState,
        deletion_date: Option<i64>,
        pending_window_days: Option<i64>,
    },
    KeyPolicyPut {
        id: RegionalId,
        policy: String,
    },
    KeyDeleted {
        id: RegionalId,
    },
    AliasCreated(Alias),
    AliasDeleted {
        id: RegionalId,
    },
    /// `UpdateAlias`: the alias points at another key of its account and region.
    AliasRetargeted {
        id: RegionalId,
        target_key_id: String,
        updated: i64,
    },
    ClockOffsetSet {
        seconds: i64,
    },
    RolePolicyPut {
        account: String,
        role: String,
        name: String,
        document: String,
    },
    RolePolicyDeleted {
        account: String,
        role: String,
        name: String,
    },
    PolicyCreated(ManagedPolicy),
    RolePolicyAttached {
        account: String,
        role: String,
        arn: String,
    },
    RolePolicyDetached {
        account: String,
        role: String,
        arn: String,
    },
}

impl State {
    pub fn account_for_access_key(&self, access_key_id: &str) -> Option<&Account> {
        self.access_keys.get(access_key_id).and_then(|id| self.accounts.get(id))
    }

    pub fn role(&self, account: &str, name: &str) -> Option<&Role> {
        self.roles.get(&(account.to_string(), name.to_ascii_lowercase()))
    }

    /// Applies a change. Changes are facts that were validated before they were journaled, so
    /// applying one never fails; a change naming something already gone is a no-op.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::AccountCreated(account) => {
                self.access_keys.insert(account.access_key_id.clone(), account.id.clone());
                self.accounts.insert(account.id.clone(), account);
            }
            Change::RoleCreated(role) => {
                self.roles.insert((role.account.clone(), role.name.to_ascii_lowercase()), role);
            }
            Change::RoleTrustPolicyUpdated { account, name, policy } => {
                if let Some(role) = self.roles.get_mut(&(account, name.to_ascii_lowercase())) {
                    role.trust_policy = policy;
                }
            }
            Change::RoleDeleted { account, name } => {
                self.roles.remove(&(account, name.to_ascii_lowercase()));
            }
            Change::KeyCreated(key) => {
                self.keys.insert((key.account.clone(), key.region.clone(), key.key_id.clone()), key);
            }
            Change::KeyStateChanged { id, state, deletion_date, pending_window_days } => {
                if let Some(key) = self.keys.get_mut(&id) {
                    key.state = state;
                    key.deletion_date = deletion_date;
                    key.pending_window_days = pending_window_days;
                }
            }
            Change::KeyPolicyPut { id, policy } => {
                if let Some(key) = self.keys.get_mut(&id) {
                    key.policy = policy;
                    key.parsed_policy = std::sync::OnceLock::new();
                }
            }
            Change::KeyDeleted { id } => {
                self.keys.remove(&id);
                let (account, region, key_id) = id;
                self.aliases.retain(|(a, r, _), alias| !(a == &account && r == &region && alias.target_key_id == key_id));
            }
            Change::RolePolicyPut { account, role, name, document } => {
                if let Some(role) = self.roles.get_mut(&(account, role.to_ascii_lowercase())) {
                    role.inline_policies.insert(name, document);
                }
            }
            Change::RolePolicyDeleted { account, role, name } => {
                if let Some(role) = self.roles.get_mut(&(account, role.to_ascii_lowercase())) {
                    role.inline_policies.remove(&name);
                }
            }
            Change::PolicyCreated(policy) => {
                self.managed_policies.insert(policy.arn(), policy);
            }
            Change::RolePolicyAttached { account, role, arn } => {
                if let Some(role) = self.roles.get_mut(&(account, role.to_ascii_lowercase())) {
                    role.attached_policies.insert(arn);
                }
            }
            Change::RolePolicyDetached { account, role, arn } => {
                if let Some(role) = self.roles.get_mut(&(account, role.to_ascii_lowercase())) {
                    role.attached_policies.remove(&arn);
                }
            }
            Change::AliasCreated(alias) => {
                self.aliases.insert((alias.account.clone(), alias.region.clone(), alias.name.clone()), alias);
            }
            Change::AliasDeleted { id } => {
                self.aliases.remove(&id);
            }
            Change::AliasRetargeted { id, target_key_id, updated } => {
                if let Some(alias) = self.aliases.get_mut(&id) {
                    alias.target_key_id = target_key_id;
                    alias.updated = updated;
                }
            }
            // The admin endpoint refuses such offsets; a journal or snapshot edited by hand (or
            // written by an older release) must not stop the cloud from starting either.
            Change::ClockOffsetSet { seconds } if (-MAX_CLOCK_OFFSET..=MAX_CLOCK_OFFSET).contains(&seconds) => self.clock_offset = seconds,
            Change::ClockOffsetSet { seconds } => {
                tracing::warn!(seconds, "ignoring a saved clock offset beyond ten years either way");
            }
        }
    }
}

/// Errors opening or writing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot use data directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The state plus the journal it is written to (none for an in-memory instance).
#[derive(Debug)]
pub struct Persistent {
    pub state: State,
    journal: Option<(PathBuf, File)>,
}

const SNAPSHOT: &str = "state.json";
const JOURNAL: &str = "journal.jsonl";

impl Persistent {
    /// A fresh state that is never written anywhere.
    pub fn in_memory() -> Self {
        Self { state: State { session_secret: Secret32::random(), ..State::default() }, journal: None }
    }

    /// Opens (or creates) the state in `dir`: snapshot, then journal replay, then compaction.
    pub fn open(dir: &Path) -> Result<Self, PersistError> {
        restrict_dir(dir);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PersistError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let snapshot_path = dir.join(SNAPSHOT);
        let journal_path = dir.join(JOURNAL);
        let mut state = match fs::read(&snapshot_path) {
            Ok(bytes) => {
                let snapshot: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt { path: snapshot_path.clone(), source })?;
                State::from(snapshot)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State { session_secret: Secret32::random(), ..State::default() },
            Err(e) => return Err(io(&snapshot_path)(e)),
        };
        match File::open(&journal_path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(io(&journal_path))?;
                    // A torn last line (a crash mid-append) was never acknowledged: stop there.
                    match serde_json::from_str::<Change>(&line) {
                        Ok(change) => state.apply(change),
                        Err(_) => break,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&journal_path)(e)),
        }
        // Compact: write the whole state atomically, then start an empty journal.
        let tmp = dir.join("state.json.tmp");
        let bytes = serde_json::to_vec(&Snapshot::from(&state)).map_err(|source| PersistError::Corrupt { path: tmp.clone(), source })?;
        let mut f = private(OpenOptions::new().create(true).write(true).truncate(true)).open(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &snapshot_path).map_err(io(&snapshot_path))?;
        let journal = private(OpenOptions::new().create(true).write(true).truncate(true)).open(&journal_path).map_err(io(&journal_path))?;
        Ok(Self { state, journal: Some((journal_path, journal)) })
    }

    /// Journals and applies a change. The write reaches the OS before the caller answers, so
    /// a killed process loses nothing it acknowledged.
    pub fn commit(&mut self, change: Change) -> Result<(), PersistError> {
        if let Some((path, file)) = &mut self.journal {
            let mut line = serde_json::to_vec(&change).map_err(|source| PersistError::Corrupt { path: path.clone(), source })?;
            line.push(b'\n');
            file.write_all(&line).map_err(|source| PersistError::Io { path: path.clone(), source })?;
        }
        self.state.apply(change);
        Ok(())
    }
}

/// Random printable identifiers in AWS's shapes.
pub mod ids {
    const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    fn random_bytes<const N: usize>() -> [u8; N] {
        let mut b = [0u8; N];
        // aws-lc's RNG only fails if the OS has no entropy source; fall back to zeros is not
        // acceptable, so retry (it does not fail in practice).
        while aws_lc_rs::rand::fill(&mut b).is_err() {}
        b
    }

    pub fn upper(prefix: &str, len: usize) -> String {
        let bytes: [u8; 32] = random_bytes();
        prefix.to_string() + &bytes.iter().take(len).map(|b| UPPER_ALNUM[(*b as usize) % 32] as char).collect::<String>()
    }

    pub fn account_id() -> String {
        let bytes: [u8; 12] = random_bytes();
        let mut s: String = bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
        if s.starts_with('0') {
            s.replace_range(0..1, "1");
        }
        s
    }

    pub fn secret_key() -> String {
        use base64::Engine;
        let bytes: [u8; 30] = random_bytes();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn uuid() -> String {
        let mut b: [u8; 16] = random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    pub fn request_id() -> String {
        uuid()
    }
}

/// Files that hold account secrets are the owner's alone (0600).
pub(crate) fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// The data directory too (0700), best effort: it may be shared on purpose.
fn restrict_dir(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::create_dir_all(dir);
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
}
