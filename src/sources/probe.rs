//! Finds damaged mailboxes on a real Dovecot 2.3 through the doveadm HTTP
//! API, one user at a time: the three kinds of damage seen on this kind of
//! platform (`docs/dovecot-damage.md` has the experiments behind every
//! sentence here).
//!
//! # What a probe does
//!
//! [`probe`] with [`Depth::Rescan`] makes three calls, each retried once
//! when it fails with something else than an outage or an unknown user:
//!
//! 1. `mailboxStatus` of every folder (`*`): `messages`, `uidnext`,
//!    `uidvalidity`, `highestmodseq`;
//! 2. `forceResync` of every folder, **without** fsck: Dovecot rescans the
//!    folders' `cur/` and `new/` against its index;
//! 3. `mailboxStatus` of every folder again.
//!
//! [`Depth::Status`] makes only the first call (a third of the cost) and
//! cannot see a stale index.
//!
//! # What it finds, and how
//!
//! * **Corrupt transaction log** ([`Damage::CorruptLog`]): the first access
//!   to a folder whose `dovecot.index.log` holds a garbled record fails
//!   with doveadm exit code 75; that same access rebuilds the index, so the
//!   retry answers. Exit code 75 then an answer is reported as a corrupt
//!   log; 75 then no answer at all (Dovecot stopping) is an outage.
//! * **Lost uidlist** ([`Damage::LostUidlist`]): when `dovecot-uidlist` and
//!   the index files are gone, the next access rebuilds them silently and
//!   gives the folder a new UIDVALIDITY: every IMAP client of that folder
//!   must drop its cache and resync. Found by comparing each folder's
//!   UIDVALIDITY with the `previous` observation of the same user.
//! * **Stale index** ([`Damage::StaleIndex`]): message files added to (or
//!   removed from) `cur/` or `new/` behind Dovecot's back, with the
//!   directory's mtime unchanged, are not seen by `mailboxStatus` nor by
//!   `index`; `forceResync` (with or without fsck) finds them. A folder
//!   whose `messages` or `uidnext` differ before and after the resync had
//!   a stale index.
//! * **Index rebuilt since the last observation** ([`Damage::IndexRebuilt`]):
//!   when someone else (an IMAP login, a delivery) met a corrupt log first,
//!   Dovecot rebuilt the index during that access and the probe gets no
//!   exit code 75. What remains is the folder's HIGHESTMODSEQ gone back
//!   (to 2 on every rebuild seen) with the same UIDVALIDITY; a UIDNEXT gone
//!   back (UIDs about to be reused: an old uidlist restored) is reported
//!   the same way. Neither ever happens to a healthy folder (IMAP forbids
//!   both), so this needs no threshold, only a `previous` observation.
//! * Any other doveadm exit code twice in a row (77 permission denied, 74
//!   I/O error, ...) is [`Damage::Unreadable`].
//!
//! # What it cannot detect
//!
//! * **A uidlist lost before the first observation.** The new UIDVALIDITY
//!   is not the time of the rebuild: Dovecot draws it from the user's
//!   `dovecot-uidvalidity` counter (last value + 1), so it looks like any
//!   other folder's; and the rebuilt folder (HIGHESTMODSEQ 2, every UID
//!   renumbered from 1) looks exactly like a healthy folder that Dovecot
//!   sees for the first time (a new user whose mail an MTA wrote straight
//!   into the Maildir). Without a `previous` observation a probe reports
//!   such a folder healthy, which is right for the new user and wrong for
//!   the lost uidlist: IMAP clients that knew the old UIDVALIDITY still
//!   have to resync, and nothing here can tell them.
//! * **A corrupt log or lost index files already rebuilt by another access
//!   before the first observation**, or in a folder whose HIGHESTMODSEQ was
//!   still at what a rebuild gives (2: a folder filled in one transaction).
//! * **A garbled record in the part of `dovecot.index.log` that
//!   `dovecot.index` already holds**: Dovecot does not read it again, so
//!   neither `mailboxStatus` nor `forceResync` (even with fsck) fails or
//!   changes anything.
//! * **A folder deleted and re-created under the same name** between two
//!   probes is reported as a lost uidlist: the effect on clients is the
//!   same (new UIDVALIDITY), the cause is not damage.
//! * **A delivery or an expunge by someone else between the first status
//!   and the resync** (a few milliseconds) shows as a stale index of one
//!   message: the race cannot be told from the damage through this API.
//!
//! # What the probe itself repairs
//!
//! Every access repairs what it meets: the failing access rebuilds a
//! corrupt log, the first access after a lost uidlist rebuilds it (with the
//! new UIDVALIDITY, for good), and the resync of [`Depth::Rescan`] brings a
//! stale index up to date. What the probe reports is what it found and, in
//! `now`, the state after its own repairs. It does not rebuild caches or
//! run fsck: that is the reindexer's job (`forceResync` with fsck, then
//! `index`). A user whose mailbox was never opened has no folder yet:
//! Dovecot lists none (the probe reports it healthy with no folders) and
//! creates nothing but the empty Maildir directory; the INBOX appears at
//! the first login or delivery.
//!
//! # All folders, not only INBOX
//!
//! Each folder has its own index, transaction log and uidlist, so damage is
//! per folder, and IMAP clients cache UIDVALIDITY per folder; a probe of
//! INBOX alone would miss damage in Sent or Archive. Seen here, a status of
//! eleven folders costs what INBOX alone costs (one doveadm command: user
//! lookup and storage set-up dominate) and a resync of eleven costs half as
//! much again as one; the reindexer already repairs all folders of a user.
//! The cost grows with the number of folders and, for the resync, with the
//! number of files to list; an [`Observation`] keeps about 40 bytes plus
//! the name per folder.

use std::collections::BTreeMap;
use std::fmt;

use super::dovecot::{DoveError, Doveadm, FolderStatus};

/// Every folder of the user (the mask given to doveadm).
pub const ALL_FOLDERS: &str = "*";

/// What one probe saw of one user's folders, sorted by name. Keep the last
/// one per user (serde-serialisable, so across gateway restarts too) and
/// pass it as `previous` to the next probe of that user.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    pub folders: Vec<FolderStatus>,
}

impl Observation {
    /// Sorts the folders by name and drops repeated names (the first stays).
    pub fn new(mut folders: Vec<FolderStatus>) -> Observation {
        folders.sort_by(|a, b| a.name.cmp(&b.name));
        folders.dedup_by(|b, a| a.name == b.name);
        Observation { folders }
    }

    pub fn folder(&self, name: &str) -> Option<&FolderStatus> {
        self.folders
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.folders[i])
    }

    pub fn inbox(&self) -> Option<&FolderStatus> {
        self.folder("INBOX")
    }

    /// Messages in all folders.
    pub fn messages(&self) -> u64 {
        self.folders.iter().map(|f| f.messages).sum()
    }
}

/// One finding. `kind()` names it for screens and logs, `Display` says it
/// in a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// doveadm failed with exit code 75 and (usually) answered on the
    /// retry: a corrupted transaction log, rebuilt by the failing access.
    CorruptLog { detail: String },
    /// A folder's UIDVALIDITY changed since the previous observation.
    LostUidlist {
        before: FolderStatus,
        after: FolderStatus,
    },
    /// A folder's `messages` or `uidnext` changed across the probe's own
    /// resync: the index did not show what was on disk.
    StaleIndex {
        before: FolderStatus,
        after: FolderStatus,
    },
    /// A folder's HIGHESTMODSEQ or UIDNEXT went back since the previous
    /// observation, with the same UIDVALIDITY.
    IndexRebuilt {
        before: FolderStatus,
        after: FolderStatus,
    },
    /// doveadm failed twice with another exit code than 67 or 75.
    Unreadable { error: DoveError },
}

impl Damage {
    /// `corrupt_log`, `lost_uidlist`, `stale_index`, `index_rebuilt`,
    /// `unreadable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Damage::CorruptLog { .. } => "corrupt_log",
            Damage::LostUidlist { .. } => "lost_uidlist",
            Damage::StaleIndex { .. } => "stale_index",
            Damage::IndexRebuilt { .. } => "index_rebuilt",
            Damage::Unreadable { .. } => "unreadable",
        }
    }

    /// The folder it concerns, when one is known.
    pub fn folder(&self) -> Option<&str> {
        match self {
            Damage::LostUidlist { after, .. }
            | Damage::StaleIndex { after, .. }
            | Damage::IndexRebuilt { after, .. } => Some(&after.name),
            Damage::CorruptLog { .. } | Damage::Unreadable { .. } => None,
        }
    }

    /// IMAP clients of the folder must drop what they cached and resync.
    pub fn clients_must_resync(&self) -> bool {
        matches!(
            self,
            Damage::LostUidlist { .. } | Damage::IndexRebuilt { .. }
        )
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::CorruptLog { detail } => write!(f, "corrupted transaction log: {detail}"),
            Damage::LostUidlist { before, after } => write!(
                f,
                "{}: UIDVALIDITY changed {} → {}: IMAP clients must resync \
                 (Dovecot rebuilt the folder's lost uidlist, or the folder was re-created)",
                after.name, before.uidvalidity, after.uidvalidity
            ),
            Damage::StaleIndex { before, after } => write!(
                f,
                "{}: the index showed {} messages (UIDNEXT {}), a rescan found {} (UIDNEXT {}): \
                 stale index, brought up to date by the rescan",
                after.name, before.messages, before.uidnext, after.messages, after.uidnext
            ),
            Damage::IndexRebuilt { before, after } => {
                write!(f, "{}: ", after.name)?;
                if after.uidnext < before.uidnext {
                    write!(
                        f,
                        "UIDNEXT went back {} → {} with UIDVALIDITY {} unchanged: \
                         UIDs will be reused, IMAP clients must resync",
                        before.uidnext, after.uidnext, after.uidvalidity
                    )
                } else {
                    write!(
                        f,
                        "HIGHESTMODSEQ went back {} → {} with UIDVALIDITY {} unchanged: \
                         Dovecot rebuilt the folder's index since the last probe \
                         (a corrupted transaction log met by another access, or lost \
                         index files); CONDSTORE clients must resync flags",
                        before.highestmodseq, after.highestmodseq, after.uidvalidity
                    )
                }
            }
            Damage::Unreadable { error } => {
                write!(
                    f,
                    "{error} on every try: Dovecot cannot read this user's folders"
                )
            }
        }
    }
}

/// What a probe concluded about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// Nothing found; the observation to keep.
    Healthy(Observation),
    /// At least one finding, in the order found. `now` is the state after
    /// the probe's own repairs (keep it as the next `previous`); `None`
    /// when Dovecot never answered with one.
    Damaged {
        damage: Vec<Damage>,
        now: Option<Observation>,
    },
    /// doveadm exit code 67: no such user (any more).
    UnknownUser,
    /// Dovecot is not answering ([`DoveError::is_outage`]): nothing is
    /// known about this mailbox; probe it again when Dovecot is back.
    Outage(DoveError),
    /// The probe could not tell: a malformed answer, a refused request,
    /// doveadm dying twice in a row.
    Failed(DoveError),
}

impl ProbeResult {
    /// The observation to keep for the next probe, if any.
    pub fn observation(&self) -> Option<&Observation> {
        match self {
            ProbeResult::Healthy(o) => Some(o),
            ProbeResult::Damaged { now, .. } => now.as_ref(),
            _ => None,
        }
    }
}

/// How far a probe goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// One `mailboxStatus`: corrupt logs, lost uidlists, rebuilt indexes.
    /// Not stale indexes.
    Status,
    /// Status, `forceResync` without fsck, status: all of the above and
    /// stale indexes.
    #[default]
    Rescan,
}

/// Probes one user's folders with [`Depth::Rescan`]. `previous` is the
/// last observation kept for this user (from [`ProbeResult::observation`]).
pub async fn probe(client: &Doveadm, user: &str, previous: Option<&Observation>) -> ProbeResult {
    probe_to(client, user, previous, Depth::Rescan).await
}

/// [`probe`] to the given depth.
pub async fn probe_to(
    client: &Doveadm,
    user: &str,
    previous: Option<&Observation>,
    depth: Depth,
) -> ProbeResult {
    run(client, user, previous, depth).await
}

/// The two calls a probe makes, so the sequence can be tested without a
/// Dovecot.
trait Folders {
    async fn status(&self, user: &str) -> Result<Vec<FolderStatus>, DoveError>;
    async fn rescan(&self, user: &str) -> Result<(), DoveError>;
}

impl Folders for Doveadm {
    async fn status(&self, user: &str) -> Result<Vec<FolderStatus>, DoveError> {
        self.folder_status(user, ALL_FOLDERS).await
    }

    async fn rescan(&self, user: &str) -> Result<(), DoveError> {
        self.force_resync_with(user, ALL_FOLDERS, false).await
    }
}

/// How one call (with its one retry) ended.
enum Call<T> {
    /// Answered; `rebuilt` when the first try failed with exit code 75.
    Ok { value: T, rebuilt: bool },
    /// Ends the probe with this outcome (unless damage was already found).
    Stop(Stopped),
}

enum Stopped {
    UnknownUser,
    Outage(DoveError),
    Damage(Damage),
    Failed(DoveError),
}

async fn call<T, F, Fut>(what: &str, mut op: F) -> Call<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DoveError>>,
{
    let first = match op().await {
        Ok(value) => {
            return Call::Ok {
                value,
                rebuilt: false,
            };
        }
        Err(e) => e,
    };
    if let Some(stop) = final_error(&first) {
        return Call::Stop(stop);
    }
    match op().await {
        Ok(value) => Call::Ok {
            value,
            rebuilt: is_75(&first),
        },
        Err(second) => Call::Stop(final_error(&second).unwrap_or_else(|| match second {
            DoveError::Exit { code: 75, .. } => Stopped::Damage(Damage::CorruptLog {
                detail: format!(
                    "{what} failed with doveadm exit code 75 twice in a row: \
                     an index Dovecot cannot rebuild (see Dovecot's log)"
                ),
            }),
            DoveError::Exit { .. } => Stopped::Damage(Damage::Unreadable { error: second }),
            other => Stopped::Failed(other),
        })),
    }
}

/// Errors that end a probe at once, without a retry.
fn final_error(e: &DoveError) -> Option<Stopped> {
    match e {
        DoveError::Exit { code: 67, .. } => Some(Stopped::UnknownUser),
        e if e.is_outage() => Some(Stopped::Outage(e.clone())),
        DoveError::Invalid(_) | DoveError::Rejected(_) => Some(Stopped::Failed(e.clone())),
        _ => None,
    }
}

fn is_75(e: &DoveError) -> bool {
    matches!(e, DoveError::Exit { code: 75, .. })
}

async fn run<C: Folders>(
    client: &C,
    user: &str,
    previous: Option<&Observation>,
    depth: Depth,
) -> ProbeResult {
    let mut damage = Vec::new();
    let end = |stop: Stopped, mut damage: Vec<Damage>, now: Option<Observation>| match stop {
        Stopped::Damage(d) => {
            damage.push(d);
            ProbeResult::Damaged { damage, now }
        }
        // What was found before the outage is reported; the outage will
        // be met again by the next call anyway.
        _ if !damage.is_empty() => ProbeResult::Damaged { damage, now },
        Stopped::UnknownUser => ProbeResult::UnknownUser,
        Stopped::Outage(e) => ProbeResult::Outage(e),
        Stopped::Failed(e) => ProbeResult::Failed(e),
    };

    // 1. Every folder as the index has it.
    let (first, rebuilt) = match call("mailboxStatus", || client.status(user)).await {
        Call::Ok { value, rebuilt } => (Observation::new(value), rebuilt),
        Call::Stop(stop) => return end(stop, damage, None),
    };
    let went_back = previous.map(|p| compare(p, &first)).unwrap_or_default();
    if rebuilt {
        damage.push(corrupt_log("mailboxStatus", &went_back));
    }
    for d in went_back {
        // A rebuild this probe caused is part of the corrupt log above.
        if !(rebuilt && matches!(d, Damage::IndexRebuilt { .. })) {
            damage.push(d);
        }
    }
    if depth == Depth::Status {
        return conclude(damage, first);
    }

    // 2. Rescan the folders' directories, 3. look again.
    match call("forceResync", || client.rescan(user)).await {
        Call::Ok { rebuilt, .. } => {
            if rebuilt {
                damage.push(corrupt_log("forceResync", &[]));
            }
        }
        Call::Stop(stop) => return end(stop, damage, Some(first)),
    }
    let after = match call("mailboxStatus", || client.status(user)).await {
        Call::Ok { value, rebuilt } => {
            if rebuilt {
                damage.push(corrupt_log("mailboxStatus after the resync", &[]));
            }
            Observation::new(value)
        }
        Call::Stop(stop) => return end(stop, damage, Some(first)),
    };
    damage.extend(stale(&first, &after));
    // A uidlist lost between this probe's own calls (while it ran): the
    // UIDVALIDITY changed under it. Without this, the new value would be
    // kept as the baseline and the loss never reported.
    damage.extend(
        compare(&first, &after)
            .into_iter()
            .filter(|d| matches!(d, Damage::LostUidlist { .. })),
    );
    conclude(damage, after)
}

fn conclude(damage: Vec<Damage>, now: Observation) -> ProbeResult {
    if damage.is_empty() {
        ProbeResult::Healthy(now)
    } else {
        ProbeResult::Damaged {
            damage,
            now: Some(now),
        }
    }
}

fn corrupt_log(what: &str, went_back: &[Damage]) -> Damage {
    let mut detail = format!(
        "{what} failed with doveadm exit code 75 and answered on the retry: \
         Dovecot rebuilt an index on the failing access"
    );
    let rebuilt: Vec<String> = went_back
        .iter()
        .filter_map(|d| match d {
            Damage::IndexRebuilt { before, after } => Some(format!(
                "{} (HIGHESTMODSEQ {} → {})",
                after.name, before.highestmodseq, after.highestmodseq
            )),
            _ => None,
        })
        .collect();
    if !rebuilt.is_empty() {
        detail.push_str(&format!("; rebuilt: {}", rebuilt.join(", ")));
    }
    Damage::CorruptLog { detail }
}

/// Lost uidlists and rebuilt indexes: each folder seen both times, by
/// name. Folders created or deleted in between are not compared.
pub fn compare(previous: &Observation, now: &Observation) -> Vec<Damage> {
    let before: BTreeMap<&str, &FolderStatus> = previous
        .folders
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    let mut found = Vec::new();
    for after in &now.folders {
        let Some(before) = before.get(after.name.as_str()) else {
            continue;
        };
        let pair = || ((*before).clone(), after.clone());
        if after.uidvalidity != before.uidvalidity {
            let (before, after) = pair();
            found.push(Damage::LostUidlist { before, after });
        } else if after.highestmodseq < before.highestmodseq || after.uidnext < before.uidnext {
            let (before, after) = pair();
            found.push(Damage::IndexRebuilt { before, after });
        }
    }
    found
}

/// Stale indexes: folders whose `messages` or `uidnext` changed across a
/// resync (same UIDVALIDITY; a folder re-created in between is not stale).
pub fn stale(before_resync: &Observation, after_resync: &Observation) -> Vec<Damage> {
    after_resync
        .folders
        .iter()
        .filter_map(|after| {
            let before = before_resync.folder(&after.name)?;
            let changed = before.uidvalidity == after.uidvalidity
                && (before.messages != after.messages || before.uidnext != after.uidnext);
            changed.then(|| Damage::StaleIndex {
                before: before.clone(),
                after: after.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn folder(
        name: &str,
        messages: u64,
        uidnext: u64,
        uidvalidity: u64,
        modseq: u64,
    ) -> FolderStatus {
        FolderStatus {
            name: name.into(),
            messages,
            uidnext,
            uidvalidity,
            highestmodseq: modseq,
        }
    }

    fn exit(code: i32) -> DoveError {
        DoveError::Exit {
            code,
            meaning: crate::sources::dovecot::exit_meaning(code),
        }
    }

    /// Answers each call from a script, in order, and records the calls.
    #[derive(Default)]
    struct Script {
        statuses: Mutex<VecDeque<Result<Vec<FolderStatus>, DoveError>>>,
        rescans: Mutex<VecDeque<Result<(), DoveError>>>,
        calls: Mutex<Vec<&'static str>>,
    }

    impl Script {
        fn new(
            statuses: Vec<Result<Vec<FolderStatus>, DoveError>>,
            rescans: Vec<Result<(), DoveError>>,
        ) -> Script {
            Script {
                statuses: Mutex::new(statuses.into()),
                rescans: Mutex::new(rescans.into()),
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<&'static str> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Folders for Script {
        async fn status(&self, _user: &str) -> Result<Vec<FolderStatus>, DoveError> {
            self.calls.lock().unwrap().push("status");
            self.statuses
                .lock()
                .unwrap()
                .pop_front()
                .expect("a scripted status")
        }

        async fn rescan(&self, _user: &str) -> Result<(), DoveError> {
            self.calls.lock().unwrap().push("rescan");
            self.rescans
                .lock()
                .unwrap()
                .pop_front()
                .expect("a scripted rescan")
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn inbox(messages: u64, uidnext: u64, uidvalidity: u64, modseq: u64) -> Vec<FolderStatus> {
        vec![
            folder("INBOX", messages, uidnext, uidvalidity, modseq),
            folder("Sent", 2, 3, uidvalidity + 1, 3),
        ]
    }

    #[test]
    fn a_quiet_mailbox_is_healthy_with_or_without_a_previous_observation() {
        let now = inbox(5, 6, 100, 6);
        for previous in [None, Some(Observation::new(now.clone()))] {
            let s = Script::new(vec![Ok(now.clone()), Ok(now.clone())], vec![Ok(())]);
            let r = block(run(&s, "a@x", previous.as_ref(), Depth::Rescan));
            assert_eq!(r, ProbeResult::Healthy(Observation::new(now.clone())));
            assert_eq!(s.calls(), ["status", "rescan", "status"]);
        }
        // Healthy growth between probes (new mail, flags changed) is not damage.
        let previous = Observation::new(inbox(3, 4, 100, 4));
        let s = Script::new(vec![Ok(now.clone()), Ok(now.clone())], vec![Ok(())]);
        assert!(matches!(
            block(run(&s, "a@x", Some(&previous), Depth::Rescan)),
            ProbeResult::Healthy(_)
        ));
    }

    #[test]
    fn exit_75_then_an_answer_is_a_corrupt_log_and_names_what_went_back() {
        let previous = Observation::new(inbox(5, 6, 100, 6));
        let rebuilt = inbox(5, 6, 100, 2);
        let s = Script::new(
            vec![Err(exit(75)), Ok(rebuilt.clone()), Ok(rebuilt.clone())],
            vec![Ok(())],
        );
        let r = block(run(&s, "a@x", Some(&previous), Depth::Rescan));
        let ProbeResult::Damaged { damage, now } = r else {
            panic!("{r:?}")
        };
        assert_eq!(now, Some(Observation::new(rebuilt)));
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert_eq!(damage[0].kind(), "corrupt_log");
        let text = damage[0].to_string();
        assert!(text.contains("exit code 75"), "{text}");
        assert!(text.contains("INBOX (HIGHESTMODSEQ 6 → 2)"), "{text}");
        assert_eq!(s.calls(), ["status", "status", "rescan", "status"]);
    }

    #[test]
    fn exit_75_then_nothing_is_an_outage_and_75_twice_is_still_a_corrupt_log() {
        let s = Script::new(
            vec![
                Err(exit(75)),
                Err(DoveError::Unreachable("connection refused".into())),
            ],
            vec![],
        );
        assert!(matches!(
            block(run(&s, "a@x", None, Depth::Rescan)),
            ProbeResult::Outage(DoveError::Unreachable(_))
        ));

        let s = Script::new(vec![Err(exit(75)), Err(exit(75))], vec![]);
        let r = block(run(&s, "a@x", None, Depth::Rescan));
        let ProbeResult::Damaged { damage, now: None } = r else {
            panic!("{r:?}")
        };
        assert_eq!(damage[0].kind(), "corrupt_log");
        assert!(damage[0].to_string().contains("twice"));
    }

    #[test]
    fn a_new_uidvalidity_is_a_lost_uidlist() {
        let previous = Observation::new(inbox(5, 6, 100, 6));
        let now = vec![
            folder("INBOX", 5, 6, 103, 2),
            folder("Sent", 2, 3, 101, 3),
            folder("New folder", 0, 1, 104, 1),
        ];
        let s = Script::new(vec![Ok(now.clone()), Ok(now.clone())], vec![Ok(())]);
        let r = block(run(&s, "a@x", Some(&previous), Depth::Rescan));
        let ProbeResult::Damaged { damage, now: got } = r else {
            panic!("{r:?}")
        };
        assert_eq!(got, Some(Observation::new(now)));
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert_eq!(damage[0].kind(), "lost_uidlist");
        assert_eq!(damage[0].folder(), Some("INBOX"));
        assert!(damage[0].clients_must_resync());
        assert_eq!(
            damage[0].to_string(),
            "INBOX: UIDVALIDITY changed 100 → 103: IMAP clients must resync \
             (Dovecot rebuilt the folder's lost uidlist, or the folder was re-created)"
        );
    }

    #[test]
    fn a_uidlist_lost_while_the_probe_runs_is_still_found() {
        // The first status sees the old UIDVALIDITY (as the baseline does),
        // the one after the resync the new one.
        let previous = Observation::new(inbox(5, 6, 100, 6));
        let before = inbox(5, 6, 100, 6);
        let mut after = before.clone();
        after[0] = folder("INBOX", 5, 6, 103, 2);
        let s = Script::new(vec![Ok(before), Ok(after.clone())], vec![Ok(())]);
        let r = block(run(&s, "a@x", Some(&previous), Depth::Rescan));
        let ProbeResult::Damaged { damage, now } = r else {
            panic!("{r:?}")
        };
        assert_eq!(now, Some(Observation::new(after)));
        let kinds: Vec<&str> = damage.iter().map(Damage::kind).collect();
        assert_eq!(kinds, ["lost_uidlist"], "{damage:?}");
    }

    #[test]
    fn a_count_that_moves_across_the_resync_is_a_stale_index() {
        let before = inbox(5, 6, 100, 6);
        let mut after = before.clone();
        after[1] = folder("Sent", 4, 5, 101, 4);
        let s = Script::new(vec![Ok(before), Ok(after.clone())], vec![Ok(())]);
        let r = block(run(&s, "a@x", None, Depth::Rescan));
        let ProbeResult::Damaged { damage, now } = r else {
            panic!("{r:?}")
        };
        assert_eq!(now, Some(Observation::new(after)));
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].kind(), "stale_index");
        assert_eq!(damage[0].folder(), Some("Sent"));
        assert!(!damage[0].clients_must_resync());
        assert!(
            damage[0]
                .to_string()
                .contains("showed 2 messages (UIDNEXT 3)")
        );
        assert!(damage[0].to_string().contains("found 4 (UIDNEXT 5)"));
    }

    #[test]
    fn modseq_or_uidnext_going_back_is_a_rebuilt_index() {
        let previous = Observation::new(inbox(5, 6, 100, 6));
        for (now, says) in [
            (inbox(5, 6, 100, 2), "HIGHESTMODSEQ went back 6 → 2"),
            (inbox(3, 4, 100, 7), "UIDNEXT went back 6 → 4"),
        ] {
            let found = compare(&previous, &Observation::new(now));
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].kind(), "index_rebuilt");
            assert!(found[0].to_string().contains(says), "{}", found[0]);
        }
    }

    #[test]
    fn status_depth_makes_one_call_and_cannot_see_a_stale_index() {
        let now = inbox(5, 6, 100, 6);
        let s = Script::new(vec![Ok(now.clone())], vec![]);
        assert_eq!(
            block(run(&s, "a@x", None, Depth::Status)),
            ProbeResult::Healthy(Observation::new(now))
        );
        assert_eq!(s.calls(), ["status"]);
    }

    #[test]
    fn failures_are_classified_with_one_retry() {
        // Unknown user and outages: no retry.
        let s = Script::new(vec![Err(exit(67))], vec![]);
        assert_eq!(
            block(run(&s, "a@x", None, Depth::Rescan)),
            ProbeResult::UnknownUser
        );
        let s = Script::new(vec![Err(DoveError::Timeout)], vec![]);
        assert_eq!(
            block(run(&s, "a@x", None, Depth::Rescan)),
            ProbeResult::Outage(DoveError::Timeout)
        );
        assert_eq!(s.calls(), ["status"]);
        // Another exit code twice: unreadable.
        let s = Script::new(vec![Err(exit(77)), Err(exit(77))], vec![]);
        let r = block(run(&s, "a@x", None, Depth::Rescan));
        let ProbeResult::Damaged { damage, now: None } = r else {
            panic!("{r:?}")
        };
        assert_eq!(damage[0].kind(), "unreadable");
        assert!(damage[0].to_string().contains("permission denied"));
        // doveadm dying once is retried; twice, the probe cannot tell.
        let now = inbox(5, 6, 100, 6);
        let s = Script::new(
            vec![Err(DoveError::ConnectionClosed), Ok(now.clone()), Ok(now)],
            vec![Ok(())],
        );
        assert!(matches!(
            block(run(&s, "a@x", None, Depth::Rescan)),
            ProbeResult::Healthy(_)
        ));
        let s = Script::new(
            vec![
                Err(DoveError::ConnectionClosed),
                Err(DoveError::ConnectionClosed),
            ],
            vec![],
        );
        assert_eq!(
            block(run(&s, "a@x", None, Depth::Rescan)),
            ProbeResult::Failed(DoveError::ConnectionClosed)
        );
    }

    #[test]
    fn damage_found_before_an_outage_is_kept() {
        let previous = Observation::new(inbox(5, 6, 100, 6));
        let now = inbox(5, 6, 103, 2);
        let s = Script::new(
            vec![Ok(now.clone())],
            vec![Err(DoveError::Unreachable("refused".into()))],
        );
        let r = block(run(&s, "a@x", Some(&previous), Depth::Rescan));
        let ProbeResult::Damaged { damage, now: got } = r else {
            panic!("{r:?}")
        };
        assert_eq!(damage[0].kind(), "lost_uidlist");
        assert_eq!(got, Some(Observation::new(now)));
    }

    #[test]
    fn observations_sort_and_find_folders_and_survive_serde() {
        let o = Observation::new(vec![
            folder("Sent", 1, 2, 3, 4),
            folder("INBOX", 5, 6, 7, 8),
            folder("Sent", 9, 9, 9, 9),
        ]);
        assert_eq!(o.folders.len(), 2);
        assert_eq!(o.inbox().map(|f| f.messages), Some(5));
        assert_eq!(o.folder("Sent").map(|f| f.messages), Some(1));
        assert_eq!(o.folder("Trash"), None);
        assert_eq!(o.messages(), 6);
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Observation>(&text).unwrap(), o);
    }
}
