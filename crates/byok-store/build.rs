//! `sqlx::migrate!` embeds the migration files at compile time: rebuild when one is added or
//! changed, so that a new migration is never missing from an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
