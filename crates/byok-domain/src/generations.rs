//! A tenant's key generations: which one seals new records, which ones still open old ones,
//! and which are erased. Rotation adds a generation; retiring raises the floor of what opens;
//! shredding erases the wrapped keys below that floor, after which it cannot come down again.

use serde::{Deserialize, Serialize};

/// The generation of tenant keys made at onboarding.
pub const FIRST_GENERATION: u32 = 1;

/// A tenant's key generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGenerations {
    /// The generation new records are sealed under (the newest).
    pub current: u32,
    /// Records of older generations are refused (`generation_retired`).
    pub min_decryption: u32,
    /// The oldest generation whose wrapped keys are kept; older ones were shredded.
    pub kept_from: u32,
    /// When `current` was made (scheduled rotation counts from here).
    #[serde(with = "time::serde::rfc3339")]
    pub rotated_at: time::OffsetDateTime,
}

/// Why a change to the generations is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    #[error("the minimum decryption generation must be between {kept_from} (the oldest kept) and {current} (the current one); got {asked}")]
    OutOfRange { asked: u32, kept_from: u32, current: u32 },
    #[error("no generation after {0} can be made")]
    Exhausted(u32),
}

/// How a record's generation stands against the tenant's generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordGeneration {
    /// It opens (its generation is kept and not retired).
    Opens,
    /// Below the minimum decryption generation (or shredded): refused for good.
    Retired,
    /// Newer than the newest this reader knows: another node rotated; read again.
    Unknown,
}

impl KeyGenerations {
    /// A new tenant's: one generation, made `at`.
    pub fn first(at: time::OffsetDateTime) -> Self {
        Self { current: FIRST_GENERATION, min_decryption: FIRST_GENERATION, kept_from: FIRST_GENERATION, rotated_at: at }
    }

    /// After a rotation at `at`: a new current generation; the floor stays.
    pub fn rotated(self, at: time::OffsetDateTime) -> Result<Self, GenerationError> {
        let current = self.current.checked_add(1).ok_or(GenerationError::Exhausted(self.current))?;
        Ok(Self { current, rotated_at: at, ..self })
    }

    /// With the minimum decryption generation set to `min`: anywhere from the oldest kept
    /// generation (lowering it again is allowed until it is shredded) to the current one.
    pub fn with_min_decryption(self, min: u32) -> Result<Self, GenerationError> {
        if min < self.kept_from || min > self.current {
            return Err(GenerationError::OutOfRange { asked: min, kept_from: self.kept_from, current: self.current });
        }
        Ok(Self { min_decryption: min, ..self })
    }

    /// After shredding every generation below the minimum decryption generation.
    pub fn shredded(self) -> Self {
        Self { kept_from: self.min_decryption, ..self }
    }

    /// The generations that still open records, oldest first.
    pub fn readable(&self) -> std::ops::RangeInclusive<u32> {
        self.min_decryption..=self.current
    }

    /// How a record sealed under `generation` stands.
    pub fn judge(&self, generation: u32) -> RecordGeneration {
        if generation < self.min_decryption {
            RecordGeneration::Retired
        } else if generation > self.current {
            RecordGeneration::Unknown
        } else {
            RecordGeneration::Opens
        }
    }

    /// Whether a scheduled rotation every `every` is due at `now`.
    pub fn rotation_due(&self, every: time::Duration, now: time::OffsetDateTime) -> bool {
        now >= self.rotated_at + every
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{Duration, OffsetDateTime};

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).expect("time")
    }

    #[test]
    fn rotate_retire_shred() {
        let g = KeyGenerations::first(at(0));
        assert_eq!(g.readable(), 1..=1);
        let g = g.rotated(at(10)).expect("rotate").rotated(at(20)).expect("rotate");
        assert_eq!((g.current, g.min_decryption, g.kept_from, g.rotated_at), (3, 1, 1, at(20)));
        assert_eq!(g.judge(1), RecordGeneration::Opens);
        assert_eq!(g.judge(4), RecordGeneration::Unknown);

        let g = g.with_min_decryption(3).expect("retire 1 and 2");
        assert_eq!(g.judge(2), RecordGeneration::Retired);
        assert_eq!(g.readable(), 3..=3);
        let g = g.with_min_decryption(2).expect("lowered again while kept");
        assert_eq!(g.judge(2), RecordGeneration::Opens);
        assert_eq!(
            g.with_min_decryption(4),
            Err(GenerationError::OutOfRange { asked: 4, kept_from: 1, current: 3 }),
            "no higher than the current one"
        );

        let g = g.shredded();
        assert_eq!(g.kept_from, 2);
        assert_eq!(
            g.with_min_decryption(1),
            Err(GenerationError::OutOfRange { asked: 1, kept_from: 2, current: 3 }),
            "a shredded generation cannot come back"
        );
        assert_eq!(g.judge(1), RecordGeneration::Retired);
        assert_eq!(KeyGenerations { current: u32::MAX, ..g }.rotated(at(30)), Err(GenerationError::Exhausted(u32::MAX)));
    }

    #[test]
    fn rotation_is_due_after_its_period() {
        let g = KeyGenerations::first(at(0));
        assert!(!g.rotation_due(Duration::days(90), at(90 * 86_400 - 1)));
        assert!(g.rotation_due(Duration::days(90), at(90 * 86_400)));
    }
}
