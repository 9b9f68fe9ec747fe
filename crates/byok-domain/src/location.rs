//! Locations: where a tenant's data lives, as the set of regions its keys must be in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::Region;

/// A location code (`us`, `eu`, …) and its regions, nearest-first as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub code: String,
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("unknown location '{code}'; known locations: {known}")]
    Unknown { code: String, known: String },
    #[error("location '{0}' has no regions")]
    Empty(String),
}

/// The locations table. The defaults are PRODUCT.md §3's; a deployment may replace it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locations(BTreeMap<String, Vec<Region>>);

impl Default for Locations {
    fn default() -> Self {
        let table: [(&str, &[&str]); 9] = [
            ("us", &["us-east-1", "us-west-2"]),
            ("eu", &["eu-central-1", "eu-west-1"]),
            ("au", &["ap-southeast-2"]),
            ("ca", &["ca-central-1"]),
            ("de", &["eu-central-1"]),
            ("in", &["ap-south-1"]),
            ("jp", &["ap-northeast-1"]),
            ("kr", &["ap-northeast-2"]),
            ("sg", &["ap-southeast-1"]),
        ];
        Self(table.iter().map(|(code, regions)| (code.to_string(), regions.iter().filter_map(|r| r.parse().ok()).collect())).collect())
    }
}

impl Locations {
    /// A table from configuration; every location must have at least one region.
    pub fn new(table: BTreeMap<String, Vec<Region>>) -> Result<Self, LocationError> {
        if let Some((code, _)) = table.iter().find(|(_, regions)| regions.is_empty()) {
            return Err(LocationError::Empty(code.clone()));
        }
        Ok(Self(table))
    }

    /// Every location's code, sorted.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn get(&self, code: &str) -> Result<Location, LocationError> {
        self.0
            .get(code)
            .map(|regions| Location { code: code.to_string(), regions: regions.clone() })
            .ok_or_else(|| LocationError::Unknown { code: code.to_string(), known: self.0.keys().cloned().collect::<Vec<_>>().join(", ") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_product_table() {
        let locations = Locations::default();
        let eu = locations.get("eu").expect("eu");
        assert_eq!(eu.regions.iter().map(Region::as_str).collect::<Vec<_>>(), ["eu-central-1", "eu-west-1"]);
        assert_eq!(locations.get("au").expect("au").regions.len(), 1);
        let err = locations.get("mars").expect_err("unknown");
        assert!(err.to_string().contains("us"), "{err}");
        assert!(Locations::new([("x".to_string(), vec![])].into()).is_err());
    }
}
